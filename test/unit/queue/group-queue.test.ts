// GroupQueue behaviour (SPEC §5, §4.2), driven by hand-resolved work units and
// vitest's fake timers so ordering and backoff are exact.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  GroupQueue,
  type GroupQueueOptions,
  type QueueWork,
  type QueueWorkResult,
} from '../../../src/queue/group-queue.js';

interface Started {
  groupJid: string;
  work: QueueWork;
  done: boolean;
  finish: (result?: QueueWorkResult) => Promise<void>;
  fail: (error: Error) => Promise<void>;
}

/** A queue whose units stay running until the test finishes them. */
function harness(options: Partial<GroupQueueOptions> = {}) {
  const started: Started[] = [];
  let running = 0;
  let maxRunning = 0;
  const exhausted: string[] = [];
  const queue = new GroupQueue({
    maxConcurrentRuns: 2,
    maxPendingTasksPerGroup: 3,
    random: () => 0.5,
    setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
    clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    onRetriesExhausted: (jid) => exhausted.push(jid),
    execute: (groupJid, work) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      return new Promise<QueueWorkResult>((resolve, reject) => {
        const settle = async (action: () => void) => {
          running -= 1;
          action();
          // Let the queue's .then handlers run.
          await Promise.resolve();
          await Promise.resolve();
        };
        started.push({
          groupJid,
          work,
          done: false,
          finish: (result = { ok: true }) => settle(() => resolve(result)),
          fail: (error) => settle(() => reject(error)),
        });
      });
    },
    ...options,
  });
  const label = (s: Started) => `${s.groupJid}:${s.work.kind === 'task' ? s.work.taskId : 'messages'}`;
  return {
    queue,
    started,
    exhausted,
    labels: () => started.map(label),
    maxRunning: () => maxRunning,
    /** Finishes the oldest unit still running. */
    finishNext: async (result?: QueueWorkResult) => {
      const next = started.find((s) => !s.done);
      if (!next) throw new Error('no unit is running');
      next.done = true;
      await next.finish(result);
      return next;
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('GroupQueue', () => {
  it('starts work synchronously when a slot is free', () => {
    const h = harness();
    h.queue.enqueueMessages('a');
    expect(h.labels()).toEqual(['a:messages']);
    expect(h.queue.isActive('a')).toBe(true);
    expect(h.queue.activeCount()).toBe(1);
  });

  it('runs one unit per group at a time', async () => {
    const h = harness({ maxConcurrentRuns: 5 });
    h.queue.enqueueMessages('a');
    expect(h.queue.enqueueTask('a', 't1')).toBe(true);
    expect(h.labels()).toEqual(['a:messages']);
    expect(h.queue.pendingCount()).toBe(1);
    await h.finishNext();
    expect(h.labels()).toEqual(['a:messages', 'a:t1']);
    await h.finishNext();
    expect(h.queue.isActive('a')).toBe(false);
    await h.queue.onIdle();
  });

  it('never exceeds the global limit and completes every group', async () => {
    const h = harness({ maxConcurrentRuns: 2 });
    for (let i = 0; i < 20; i++) h.queue.enqueueMessages(`g${i}`);
    expect(h.queue.activeCount()).toBe(2);
    expect(h.queue.pendingCount()).toBe(18);
    for (let i = 0; i < 20; i++) {
      expect(h.queue.activeCount()).toBeLessThanOrEqual(2);
      await h.finishNext();
    }
    expect(h.maxRunning()).toBe(2);
    expect(h.started).toHaveLength(20);
    expect(new Set(h.started.map((s) => s.groupJid)).size).toBe(20);
    await h.queue.onIdle();
    expect(h.queue.activeCount()).toBe(0);
    expect(h.queue.pendingCount()).toBe(0);
  });

  it('serves waiting groups in the order they became ready', async () => {
    const h = harness({ maxConcurrentRuns: 1 });
    h.queue.enqueueMessages('a'); // runs
    h.queue.enqueueMessages('b');
    h.queue.enqueueMessages('c');
    h.queue.enqueueTask('b', 'tb'); // b keeps its place, does not move back
    h.queue.enqueueMessages('a'); // a is active: it re-enters behind b and c
    await h.finishNext();
    await h.finishNext();
    await h.finishNext();
    await h.finishNext();
    await h.finishNext();
    expect(h.labels()).toEqual(['a:messages', 'b:tb', 'c:messages', 'a:messages', 'b:messages']);
  });

  it('runs pending tasks before messages within a group', async () => {
    const h = harness({ maxConcurrentRuns: 1 });
    h.queue.enqueueMessages('busy');
    h.queue.enqueueMessages('a');
    h.queue.enqueueTask('a', 't1');
    h.queue.enqueueTask('a', 't2');
    for (let i = 0; i < 4; i++) await h.finishNext();
    expect(h.labels()).toEqual(['busy:messages', 'a:t1', 'a:t2', 'a:messages']);
  });

  it('coalesces message enqueues into one pending unit', async () => {
    const h = harness({ maxConcurrentRuns: 1 });
    h.queue.enqueueMessages('a');
    h.queue.enqueueMessages('a');
    h.queue.enqueueMessages('a');
    expect(h.queue.pendingCount()).toBe(1);
    await h.finishNext();
    await h.finishNext();
    expect(h.labels()).toEqual(['a:messages', 'a:messages']);
    await h.queue.onIdle();
  });

  it('bounds pending tasks per group and refuses duplicates', async () => {
    const h = harness({ maxConcurrentRuns: 1, maxPendingTasksPerGroup: 2 });
    expect(h.queue.enqueueTask('a', 't1')).toBe(true); // running
    expect(h.queue.enqueueTask('a', 't1')).toBe(false); // already running
    expect(h.queue.enqueueTask('a', 't2')).toBe(true);
    expect(h.queue.enqueueTask('a', 't2')).toBe(false); // already pending
    expect(h.queue.enqueueTask('a', 't3')).toBe(true);
    expect(h.queue.enqueueTask('a', 't4')).toBe(false); // bound reached
    expect(h.queue.enqueueTask('b', 't5')).toBe(true); // other groups have their own bound
    await h.finishNext();
    expect(h.queue.enqueueTask('a', 't4')).toBe(false); // b was waiting first, so t2 and t3 are still pending
    expect(h.labels()).toEqual(['a:t1', 'b:t5']);
    await h.finishNext();
    expect(h.labels()).toEqual(['a:t1', 'b:t5', 'a:t2']);
    expect(h.queue.enqueueTask('a', 't4')).toBe(true);
  });

  it('backs off 5, 10, 20, 40, 80 s and reports exhaustion once', async () => {
    const h = harness({ maxConcurrentRuns: 1 });
    h.queue.enqueueMessages('a');
    await h.finishNext({ ok: false, retry: true });
    for (const delayMs of [5000, 10000, 20000, 40000, 80000]) {
      const before = h.started.length;
      await vi.advanceTimersByTimeAsync(delayMs - 1);
      expect(h.started.length).toBe(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(h.started.length).toBe(before + 1);
      expect(h.exhausted).toEqual([]);
      await h.finishNext({ ok: false, retry: true });
    }
    expect(h.exhausted).toEqual(['a']);
    expect(h.started).toHaveLength(6);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(h.started).toHaveLength(6);
    expect(h.exhausted).toEqual(['a']);
    // The next inbound message starts fresh: the first retry is back to 5 s.
    h.queue.enqueueMessages('a');
    expect(h.started).toHaveLength(7);
    await h.finishNext({ ok: false, retry: true });
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.started).toHaveLength(8);
  });

  it('a group waiting for its retry holds no slot: other groups run during its backoff', async () => {
    const h = harness({ maxConcurrentRuns: 1 });
    h.queue.enqueueMessages('failing');
    await h.finishNext({ ok: false, retry: true });
    // The only slot is free during the 5 s backoff: another group's work starts at once.
    h.queue.enqueueMessages('other');
    expect(h.labels()).toEqual(['failing:messages', 'other:messages']);
    await h.finishNext();
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.labels()).toEqual(['failing:messages', 'other:messages', 'failing:messages']);
  });

  it('applies jitter within ± jitterRatio', () => {
    const low = harness({ random: () => 0 }).queue;
    const high = harness({ random: () => 0.999999 }).queue;
    const mid = harness({ random: () => 0.5 }).queue;
    expect(mid.retryDelayMs(1)).toBe(5000);
    expect(mid.retryDelayMs(3)).toBe(20000);
    expect(low.retryDelayMs(1)).toBe(4000);
    expect(high.retryDelayMs(2)).toBe(12000);
    expect(low.retryDelayMs(5)).toBe(64000);
  });

  it('does not let new messages bypass a pending backoff', async () => {
    const h = harness();
    h.queue.enqueueMessages('a');
    await h.finishNext({ ok: false, retry: true });
    h.queue.enqueueMessages('a');
    expect(h.started).toHaveLength(1);
    expect(h.queue.pendingCount()).toBe(0);
    await h.queue.onIdle(); // retry timers are not pending work
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.started).toHaveLength(2);
  });

  it('resets the retry count after a success', async () => {
    const h = harness();
    h.queue.enqueueMessages('a');
    await h.finishNext({ ok: false, retry: true });
    await vi.advanceTimersByTimeAsync(5000);
    await h.finishNext({ ok: false, retry: true });
    await vi.advanceTimersByTimeAsync(10000);
    await h.finishNext({ ok: true });
    h.queue.enqueueMessages('a');
    await h.finishNext({ ok: false, retry: true });
    await vi.advanceTimersByTimeAsync(4999);
    expect(h.started).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.started).toHaveLength(5);
  });

  it('does not retry failures after output was sent, nor failed tasks', async () => {
    const h = harness();
    h.queue.enqueueMessages('a');
    await h.finishNext({ ok: false, retry: false });
    h.queue.enqueueTask('b', 't1');
    await h.finishNext({ ok: false, retry: true });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(h.started).toHaveLength(2);
  });

  it('treats a rejected unit as retryable and keeps going', async () => {
    const h = harness();
    h.queue.enqueueMessages('a');
    const first = h.started[0];
    await first.fail(new Error('boom'));
    expect(h.queue.activeCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.started).toHaveLength(2);
  });

  it('lets tasks run while messages wait for their backoff', async () => {
    const h = harness();
    h.queue.enqueueMessages('a');
    await h.finishNext({ ok: false, retry: true });
    expect(h.queue.enqueueTask('a', 't1')).toBe(true);
    expect(h.labels()).toEqual(['a:messages', 'a:t1']);
  });

  it('handles execute calling back into the queue synchronously', async () => {
    const calls: string[] = [];
    const queue: GroupQueue = new GroupQueue({
      maxConcurrentRuns: 1,
      maxPendingTasksPerGroup: 5,
      setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
      clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      onRetriesExhausted: () => {},
      execute: async (jid, work) => {
        calls.push(`${jid}:${work.kind}`);
        if (jid === 'a') queue.enqueueMessages('b');
        return { ok: true };
      },
    });
    queue.enqueueMessages('a');
    await queue.onIdle();
    expect(calls).toEqual(['a:messages', 'b:messages']);
  });

  it('stop() starts nothing new and waits for active units', async () => {
    const h = harness({ maxConcurrentRuns: 1 });
    h.queue.enqueueMessages('a');
    h.queue.enqueueMessages('b');
    let stopped = false;
    const done = h.queue.stop().then(() => {
      stopped = true;
    });
    h.queue.enqueueMessages('c');
    expect(h.queue.enqueueTask('c', 't')).toBe(false);
    await Promise.resolve();
    expect(stopped).toBe(false);
    await h.finishNext();
    await done;
    expect(stopped).toBe(true);
    expect(h.labels()).toEqual(['a:messages']);
    await h.queue.onIdle();
  });

  it('stop() cancels pending retry timers', async () => {
    const h = harness();
    h.queue.enqueueMessages('a');
    await h.finishNext({ ok: false, retry: true });
    await h.queue.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
