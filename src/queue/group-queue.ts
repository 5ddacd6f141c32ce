// Decides which group runs next (SPEC §5, §4.2): one unit per group, a global
// cap, FIFO fairness across groups, tasks before messages, bounded pending work
// and exponential backoff for failed message runs. Event-driven: every decision
// is taken inside the call that changed the state, never on a polling tick.

/** One unit of work for a group: catch up on its messages, or run one scheduled task. */
export type QueueWork = { kind: 'messages' } | { kind: 'task'; taskId: string };

/**
 * What a unit reports when it is done. `retry` only matters for failed message
 * units: true when nothing reached the user, so the cursor was rolled back (SPEC §4.2).
 */
export interface QueueWorkResult {
  ok: boolean;
  retry?: boolean;
}

export type SetTimer = (callback: () => void, delayMs: number) => unknown;
export type ClearTimer = (handle: unknown) => void;

export interface GroupQueueOptions {
  maxConcurrentRuns: number;
  maxPendingTasksPerGroup: number;
  retryBaseMs?: number;
  /** Retries after the first failure; when the last one fails `onRetriesExhausted` is called. */
  maxRetries?: number;
  /** Delays are spread by ± this fraction so groups that failed together do not retry together. */
  jitterRatio?: number;
  /** Returns [0, 1); injected so tests get deterministic jitter. */
  random?: () => number;
  setTimer: SetTimer;
  clearTimer: ClearTimer;
  /** Runs one unit to completion. A rejection counts as `{ ok: false, retry: true }`. */
  execute: (groupJid: string, work: QueueWork) => Promise<QueueWorkResult>;
  onRetriesExhausted: (groupJid: string) => void;
}

interface GroupState {
  /** At most one: a run reads every message since the cursor, so more would be redundant. */
  messagesPending: boolean;
  /** Task ids in the order they were offered. */
  pendingTasks: string[];
  active: QueueWork | null;
  /** Consecutive failed message units; 0 after a success or after exhaustion. */
  failedAttempts: number;
  retryTimer: { handle: unknown } | null;
}

export class GroupQueue {
  private readonly maxConcurrentRuns: number;
  private readonly maxPendingTasksPerGroup: number;
  private readonly retryBaseMs: number;
  private readonly maxRetries: number;
  private readonly jitterRatio: number;
  private readonly random: () => number;
  private readonly setTimer: SetTimer;
  private readonly clearTimer: ClearTimer;
  private readonly execute: GroupQueueOptions['execute'];
  private readonly onRetriesExhausted: (groupJid: string) => void;

  private readonly groups = new Map<string, GroupState>();
  /** Groups with pending work and no active unit, in the order they became ready (Set keeps insertion order). */
  private readonly ready = new Set<string>();
  private active = 0;
  private stopped = false;
  private pumping = false;
  private idleWaiters: Array<() => void> = [];
  private settledWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];

  constructor(options: GroupQueueOptions) {
    if (!(options.maxConcurrentRuns >= 1)) throw new RangeError('maxConcurrentRuns must be at least 1');
    this.maxConcurrentRuns = options.maxConcurrentRuns;
    this.maxPendingTasksPerGroup = options.maxPendingTasksPerGroup;
    this.retryBaseMs = options.retryBaseMs ?? 5000;
    this.maxRetries = options.maxRetries ?? 5;
    this.jitterRatio = options.jitterRatio ?? 0.2;
    this.random = options.random ?? Math.random;
    this.setTimer = options.setTimer;
    this.clearTimer = options.clearTimer;
    this.execute = options.execute;
    this.onRetriesExhausted = options.onRetriesExhausted;
  }

  /**
   * New messages for a group. Coalesced into one pending unit. While a retry is
   * waiting for its backoff this does nothing: the retry reads everything since
   * the cursor, so the new messages are picked up then, and a chatty group
   * cannot turn the backoff into a tight failure loop.
   */
  enqueueMessages(groupJid: string): void {
    if (this.stopped) return;
    const state = this.stateOf(groupJid);
    if (state.retryTimer || state.messagesPending) return;
    state.messagesPending = true;
    this.markReady(groupJid, state);
    this.pump();
  }

  /**
   * Offers a due task. False when the group's pending bound is reached, the task
   * is already pending or running, or the queue is stopped; the task then stays
   * due in the store and the scheduler offers it again later (SPEC §5.3).
   */
  enqueueTask(groupJid: string, taskId: string): boolean {
    if (this.stopped) return false;
    const state = this.stateOf(groupJid);
    if (state.active?.kind === 'task' && state.active.taskId === taskId) return false;
    if (state.pendingTasks.includes(taskId)) return false;
    if (state.pendingTasks.length >= this.maxPendingTasksPerGroup) return false;
    state.pendingTasks.push(taskId);
    this.markReady(groupJid, state);
    this.pump();
    return true;
  }

  isActive(groupJid: string): boolean {
    return this.groups.get(groupJid)?.active != null;
  }

  /** Anything running, waiting for a slot, or waiting for a retry in this group. */
  hasWork(groupJid: string): boolean {
    const state = this.groups.get(groupJid);
    if (!state) return false;
    return (
      state.active !== null ||
      state.messagesPending ||
      state.pendingTasks.length > 0 ||
      state.retryTimer !== null
    );
  }

  activeCount(): number {
    return this.active;
  }

  /** Units waiting for a slot; a message retry still in its backoff is not counted. */
  pendingCount(): number {
    let count = 0;
    for (const state of this.groups.values())
      count += state.pendingTasks.length + (state.messagesPending ? 1 : 0);
    return count;
  }

  /**
   * Resolves when nothing is active and nothing can start. Retry timers do not
   * count: a backoff may last minutes, and callers (tests, shutdown) want to know
   * when the queue has stopped working, not when every failure has played out.
   * After `stop()` pending work cannot start, so only active units count.
   */
  onIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Groups whose failed messages wait for a backoff retry. */
  retryingCount(): number {
    let count = 0;
    for (const state of this.groups.values()) if (state.retryTimer) count++;
    return count;
  }

  /**
   * Like onIdle, but also waits for every pending retry to play out (until it
   * succeeds or its retries are exhausted): "all work is answered", for
   * `chat --json` at end of input.
   */
  onSettled(): Promise<void> {
    if (this.isIdle() && this.retryingCount() === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Starts nothing new, cancels retry timers; resolves when the active units have finished. */
  stop(): Promise<void> {
    this.stopped = true;
    for (const state of this.groups.values()) {
      if (state.retryTimer) this.clearTimer(state.retryTimer.handle);
      state.retryTimer = null;
    }
    this.ready.clear();
    this.settleWaiters();
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Delay before retry number `attempt` (1-based): base · 2^(attempt-1), ± jitterRatio. */
  retryDelayMs(attempt: number): number {
    const baseDelayMs = this.retryBaseMs * 2 ** (attempt - 1);
    const jitter = this.jitterRatio * (2 * this.random() - 1);
    return Math.max(0, Math.round(baseDelayMs * (1 + jitter)));
  }

  private stateOf(groupJid: string): GroupState {
    let state = this.groups.get(groupJid);
    if (!state) {
      state = { messagesPending: false, pendingTasks: [], active: null, failedAttempts: 0, retryTimer: null };
      this.groups.set(groupJid, state);
    }
    return state;
  }

  /** A group already waiting keeps its place; an active one re-enters when its unit ends. */
  private markReady(groupJid: string, state: GroupState): void {
    if (state.active || this.ready.has(groupJid)) return;
    if (state.pendingTasks.length > 0 || state.messagesPending) this.ready.add(groupJid);
  }

  private pump(): void {
    // execute() may call back into the queue synchronously; the outer loop picks that up.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.active < this.maxConcurrentRuns && this.ready.size > 0) {
        const groupJid = this.ready.values().next().value as string;
        this.ready.delete(groupJid);
        const state = this.stateOf(groupJid);
        const work = this.takeWork(state);
        if (!work) continue;
        this.start(groupJid, state, work);
      }
    } finally {
      this.pumping = false;
    }
    this.settleWaiters();
  }

  private takeWork(state: GroupState): QueueWork | null {
    const taskId = state.pendingTasks.shift();
    if (taskId !== undefined) return { kind: 'task', taskId };
    if (state.messagesPending) {
      state.messagesPending = false;
      return { kind: 'messages' };
    }
    return null;
  }

  private start(groupJid: string, state: GroupState, work: QueueWork): void {
    state.active = work;
    this.active += 1;
    let result: Promise<QueueWorkResult>;
    try {
      result = this.execute(groupJid, work);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (outcome) => this.finish(groupJid, state, work, outcome),
      () => this.finish(groupJid, state, work, { ok: false, retry: true }),
    );
  }

  private finish(groupJid: string, state: GroupState, work: QueueWork, outcome: QueueWorkResult): void {
    state.active = null;
    this.active -= 1;
    if (work.kind === 'messages') this.afterMessages(groupJid, state, outcome);
    if (this.stopped) {
      if (this.active === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
    } else {
      this.markReady(groupJid, state);
    }
    this.forgetIfIdle(groupJid, state);
    this.pump();
  }

  private afterMessages(groupJid: string, state: GroupState, outcome: QueueWorkResult): void {
    if (outcome.ok || !outcome.retry) {
      state.failedAttempts = 0;
      return;
    }
    // Messages that arrived during the failed run wait for the backoff too.
    state.messagesPending = false;
    state.failedAttempts += 1;
    if (state.failedAttempts > this.maxRetries) {
      state.failedAttempts = 0;
      this.onRetriesExhausted(groupJid);
      return;
    }
    if (this.stopped) return;
    const timer: { handle: unknown } = { handle: undefined };
    timer.handle = this.setTimer(() => {
      if (state.retryTimer !== timer) return;
      state.retryTimer = null;
      if (this.stopped) return;
      state.messagesPending = true;
      this.markReady(groupJid, state);
      this.pump();
    }, this.retryDelayMs(state.failedAttempts));
    state.retryTimer = timer;
  }

  private forgetIfIdle(groupJid: string, state: GroupState): void {
    const quiet = !state.active && !state.messagesPending && state.pendingTasks.length === 0;
    if (quiet && !state.retryTimer && state.failedAttempts === 0) this.groups.delete(groupJid);
  }

  private isIdle(): boolean {
    return this.active === 0 && (this.stopped || this.pendingCount() === 0);
  }

  private settleWaiters(): void {
    if (this.isIdle()) for (const resolve of this.idleWaiters.splice(0)) resolve();
    if (this.isIdle() && this.retryingCount() === 0)
      for (const resolve of this.settledWaiters.splice(0)) resolve();
  }
}
