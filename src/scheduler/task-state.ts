// The task state machine (SPEC §6), shared by the owner's CLI and the agent's
// tools so both refuse the same steps with the same words: active ⇄ paused;
// completed and error are final (a new task is scheduled instead). Resuming
// re-computes the next run from now, the way the scheduler would, so a task
// paused for a week does not fire a stale slot the moment it is resumed.

import { randomBytes } from 'node:crypto';
import type { Task, TaskStatus } from '../core/types.js';
import type { StoreApi } from '../store/api.js';
import { nextRunAfter } from './schedule.js';

export type TaskStep = 'pause' | 'resume';

export type TaskStepResult = { ok: true; task: Task; changed: boolean } | { ok: false; message: string };

type TaskStore = Pick<StoreApi, 'getTask' | 'updateTask'>;

const FINAL_STATUSES: readonly TaskStatus[] = ['completed', 'error'];

export function newTaskId(): string {
  return `task-${randomBytes(6).toString('hex')}`;
}

/** Tasks that count against the per-group cap: paused ones too, so resuming needs no second check. */
export function taskLimitProblem(
  store: Pick<StoreApi, 'listTasks'>,
  groupFolder: string,
  maxActiveTasksPerGroup: number,
): string | null {
  const live = store
    .listTasks(groupFolder)
    .filter((t) => t.status === 'active' || t.status === 'paused').length;
  if (live < maxActiveTasksPerGroup) return null;
  return `group "${groupFolder}" already has ${live} scheduled tasks, the maximum (${maxActiveTasksPerGroup}); cancel one before scheduling another`;
}

/** Why a task in `status` cannot take `step`, or null when it can. `scheduleHint` names how to schedule anew. */
export function stepRefusal(
  task: Pick<Task, 'id' | 'status'>,
  step: TaskStep,
  scheduleHint: string,
): string | null {
  if (!FINAL_STATUSES.includes(task.status)) return null;
  const why = task.status === 'completed' ? 'completed' : 'stopped with an error';
  return `task ${task.id} is ${why} and cannot be ${step}d; schedule a new one with ${scheduleHint}`;
}

/**
 * When a resumed task runs next: a cron or interval task from now (no replay of
 * slots missed while paused); a one-off keeps its time, or runs now if that passed.
 * Null when the stored schedule no longer parses.
 */
export function resumedNextRunAt(task: Task, nowMs: number, timeZone: string): number | null {
  if (task.scheduleType === 'once') return Math.max(task.nextRunAt ?? nowMs, nowMs);
  return nextRunAfter(task, nowMs, timeZone);
}

/**
 * Pauses or resumes a task. Pausing a paused task or resuming an active one is a
 * no-op success. The write only lands if the status is still the one read, so a
 * run that completes the task meanwhile wins and the step is re-judged.
 */
export function applyTaskStep(
  store: TaskStore,
  id: string,
  step: TaskStep,
  options: { nowMs: number; timeZone: string; scheduleHint: string },
): TaskStepResult {
  // Two rounds: the second sees whatever a concurrent writer left.
  for (let attempt = 0; attempt < 2; attempt++) {
    const task = store.getTask(id);
    if (!task) return { ok: false, message: `no task ${id}` };
    const refusal = stepRefusal(task, step, options.scheduleHint);
    if (refusal) return { ok: false, message: refusal };
    const target: TaskStatus = step === 'pause' ? 'paused' : 'active';
    if (task.status === target) return { ok: true, task, changed: false };
    let nextRunAt = task.nextRunAt;
    if (step === 'resume') {
      nextRunAt = resumedNextRunAt(task, options.nowMs, options.timeZone);
      if (nextRunAt === null) {
        return {
          ok: false,
          message: `task ${id} has a schedule that no longer parses (${task.scheduleType} "${task.scheduleValue}"); cancel it and schedule a new one with ${options.scheduleHint}`,
        };
      }
    }
    const updated = store.updateTask(id, { status: target, nextRunAt }, task.status);
    if (updated) return { ok: true, task: updated, changed: true };
  }
  const latest = store.getTask(id);
  return {
    ok: false,
    message: `task ${id} changed while being ${step}d (now ${latest?.status ?? 'gone'}); try again`,
  };
}
