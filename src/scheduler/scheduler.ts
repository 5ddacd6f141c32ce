// Fires scheduled tasks (SPEC §6.3–6.6) with a single timer armed for the
// earliest due task, re-armed whenever tasks change or a run ends; never a
// polling interval. SQLite stays the truth: a task's nextRunAt only moves when
// its run has finished, so a crash mid-run re-runs it at start-up instead of
// losing it, and a task the queue refused is still due and is offered again.

import type { Task, TaskRunStatus } from '../core/types.js';
import type { StoreApi, TaskUpdate } from '../store/api.js';
import { nextRunAfter } from './schedule.js';

export type SetTimer = (callback: () => void, delayMs: number) => unknown;
export type ClearTimer = (handle: unknown) => void;

export interface SchedulerOptions {
  store: StoreApi;
  /** IANA zone that cron expressions are read in. */
  timeZone: string;
  now: () => number;
  setTimer: SetTimer;
  clearTimer: ClearTimer;
  /** Hands a due task to the queue; returns whether the queue accepted it. */
  onDue: (task: Task) => boolean;
  /** How long a refused task waits before it is offered again. */
  refusedRetryMs?: number;
  /** Result and error text kept in the run log and lastResult. */
  maxResultChars?: number;
}

export interface TaskOutcome {
  status: TaskRunStatus;
  result?: string | null;
  error?: string | null;
  startedAtMs: number;
}

/** setTimeout's ceiling; longer delays would fire at once. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export class Scheduler {
  private readonly store: StoreApi;
  private readonly timeZone: string;
  private readonly now: () => number;
  private readonly setTimer: SetTimer;
  private readonly clearTimer: ClearTimer;
  private readonly onDue: (task: Task) => boolean;
  private readonly refusedRetryMs: number;
  private readonly maxResultChars: number;

  /** Tasks the queue accepted and that have not finished yet. */
  private readonly inFlight = new Set<string>();
  /** Refused tasks and when they may be offered again, so a full queue does not make the timer spin. */
  private readonly refusedUntil = new Map<string, number>();
  private timer: { handle: unknown; atMs: number } | null = null;
  private running = false;

  constructor(options: SchedulerOptions) {
    this.store = options.store;
    this.timeZone = options.timeZone;
    this.now = options.now;
    this.setTimer = options.setTimer;
    this.clearTimer = options.clearTimer;
    this.onDue = options.onDue;
    this.refusedRetryMs = options.refusedRetryMs ?? 1000;
    this.maxResultChars = options.maxResultChars ?? 2000;
  }

  /**
   * Offers everything already due (catch-up after downtime: a task whose
   * nextRunAt lies in the past is due exactly once, however many periods were
   * missed), then arms the timer.
   */
  start(): void {
    this.running = true;
    this.fire();
  }

  stop(): void {
    this.running = false;
    this.disarm();
  }

  /** Call after creating, updating, pausing, resuming or deleting a task. */
  reschedule(): void {
    if (!this.running) return;
    this.arm();
  }

  /** Task ids handed to the queue and not yet finished. */
  inFlightTaskIds(): string[] {
    return [...this.inFlight];
  }

  /** When the armed timer fires, or null when none is armed. */
  armedAtMs(): number | null {
    return this.timer?.atMs ?? null;
  }

  /**
   * Records a finished run and moves the task on. Runs after `stop()` are still
   * recorded (shutdown waits for them), only the timer stays off.
   */
  taskFinished(taskId: string, outcome: TaskOutcome): void {
    this.recordRun(taskId, outcome);
    this.release(taskId);
  }

  /**
   * The run is over, recorded or not: the task may be offered again (an
   * interrupted run left its nextRunAt alone, so it is due again at once).
   */
  release(taskId: string): void {
    this.inFlight.delete(taskId);
    this.refusedUntil.delete(taskId);
    if (this.running) this.arm();
  }

  /**
   * Logs a finished run and moves the task on: SQLite writes only, so the
   * caller can commit them in one transaction with the run's answer.
   */
  recordRun(taskId: string, outcome: TaskOutcome): void {
    // Clocks may be sub-millisecond (performance.now); the store keeps whole ms.
    const nowMs = Math.round(this.now());
    const startedAtMs = Math.round(outcome.startedAtMs);
    const task = this.store.getTask(taskId);
    // Deleted while running: there is nothing left to log against.
    if (task) {
      const result = truncate(outcome.result ?? null, this.maxResultChars);
      const error = truncate(outcome.error ?? null, this.maxResultChars);
      this.store.logTaskRun({
        taskId,
        startedAt: startedAtMs,
        durationMs: Math.max(0, nowMs - startedAtMs),
        status: outcome.status,
        result,
        error,
      });
      const update: TaskUpdate = {
        lastRunAt: startedAtMs,
        lastResult: outcome.status === 'success' ? result : (error ?? result),
      };
      // Paused (or otherwise stopped) while running: leave its schedule to whoever resumes it.
      if (task.status === 'active') {
        // A failed `once` run ends `completed` too: it is not retried, and its run log holds the error.
        if (task.scheduleType === 'once') {
          update.status = 'completed';
          update.nextRunAt = null;
        } else {
          // Intervals stay on the grid of their due times, not of finish times (SPEC §6.1, §6.4).
          const nextMs = nextRunAfter(task, nowMs, this.timeZone, task.nextRunAt);
          update.nextRunAt = nextMs;
          if (nextMs === null) update.status = 'error';
        }
      }
      this.store.updateTask(taskId, update);
    }
  }

  private fire(): void {
    this.timer = null;
    if (!this.running) return;
    const nowMs = this.now();
    for (const task of this.store.dueTasks(nowMs)) {
      if (this.inFlight.has(task.id)) continue;
      const notBeforeMs = this.refusedUntil.get(task.id);
      if (notBeforeMs !== undefined && notBeforeMs > nowMs) continue;
      if (!this.store.getGroupByFolder(task.groupFolder)) {
        this.failOrphan(task, nowMs);
        continue;
      }
      let accepted = false;
      try {
        accepted = this.onDue(task);
      } catch {
        // A throwing queue is treated like a full one: the task stays due and is offered again.
        accepted = false;
      }
      if (accepted) {
        this.inFlight.add(task.id);
        this.refusedUntil.delete(task.id);
      } else {
        this.refusedUntil.set(task.id, nowMs + this.refusedRetryMs);
      }
    }
    this.arm();
  }

  /** The group was unregistered: retrying cannot help, so the task stops here (SPEC §6.6). */
  private failOrphan(task: Task, nowMs: number): void {
    this.refusedUntil.delete(task.id);
    this.store.logTaskRun({
      taskId: task.id,
      startedAt: Math.round(nowMs),
      durationMs: 0,
      status: 'error',
      result: null,
      error: `group folder "${task.groupFolder}" is no longer registered; task stopped`,
    });
    this.store.updateTask(task.id, { status: 'error', nextRunAt: null });
  }

  private arm(): void {
    const nextMs = this.earliestOfferMs();
    if (this.timer && this.timer.atMs === nextMs) return;
    this.disarm();
    if (nextMs === null) return;
    const delayMs = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, nextMs - this.now()));
    // Beyond the ceiling the timer fires early, finds nothing due and re-arms.
    this.timer = { handle: this.setTimer(() => this.fire(), delayMs), atMs: nextMs };
  }

  private disarm(): void {
    if (this.timer) this.clearTimer(this.timer.handle);
    this.timer = null;
  }

  /** Earliest time at which some task should be offered, skipping in-flight ones and honouring refusals. */
  private earliestOfferMs(): number | null {
    // Fast path: the store's index answers when nothing needs filtering.
    if (this.inFlight.size === 0 && this.refusedUntil.size === 0) return this.store.nextDueAt();
    let earliestMs: number | null = null;
    for (const task of this.store.listTasks()) {
      if (task.status !== 'active' || task.nextRunAt === null || this.inFlight.has(task.id)) continue;
      const offerMs = Math.max(task.nextRunAt, this.refusedUntil.get(task.id) ?? -Infinity);
      if (earliestMs === null || offerMs < earliestMs) earliestMs = offerMs;
    }
    // Refusals of tasks that were since deleted or rescheduled would otherwise linger.
    for (const [taskId, notBeforeMs] of this.refusedUntil) {
      const task = this.store.getTask(taskId);
      if (!task || task.status !== 'active' || task.nextRunAt === null || task.nextRunAt > notBeforeMs) {
        this.refusedUntil.delete(taskId);
      }
    }
    return earliestMs;
  }
}

function truncate(text: string | null, maxChars: number): string | null {
  if (text === null || text.length <= maxChars) return text;
  return `${text.slice(0, maxChars - 1)}…`;
}
