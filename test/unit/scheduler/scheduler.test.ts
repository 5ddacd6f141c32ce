// Scheduler behaviour (SPEC §6.3–6.6) on fake timers, against both the real
// SQLite Store (temp file) and the in-memory test store, so the scheduler's
// assumptions about StoreApi semantics are checked on the real thing.
import { makeGroup } from '../../support/groups.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';

import type { Group, Task, TaskRunLog } from '../../../src/core/types.js';
import type { NewTask, StoreApi } from '../../../src/store/api.js';
import { openStore } from '../../../src/store/store.js';
import { MAX_TIMER_DELAY_MS, Scheduler, type SchedulerOptions } from '../../../src/scheduler/scheduler.js';
import { MemoryTaskStore } from './memory-store.js';

const T0 = Date.parse('2025-06-02T10:00:00Z'); // a Monday

/** A StoreApi plus what the tests need to set up and inspect it. */
interface Backend {
  api: StoreApi;
  addGroup(folder: string): void;
  /** Every logged run, oldest first. */
  runs(): TaskRunLog[];
}

const group = (folder: string): Group => makeGroup(folder);

/** Runs of every task ever created through `api`, since StoreApi lists runs per task. */
function withRunTracking(api: StoreApi): { api: StoreApi; runs: () => TaskRunLog[] } {
  const ids = new Set<string>();
  const tracked = Object.create(api) as StoreApi;
  tracked.createTask = (task: NewTask) => {
    ids.add(task.id);
    return api.createTask(task);
  };
  return {
    api: tracked,
    runs: () => [...ids].flatMap((id) => api.taskRuns(id, 1000)).sort((a, b) => a.id - b.id),
  };
}

const backends: Array<[string, () => Backend]> = [
  [
    'sqlite',
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-scheduler-'));
      const store = openStore(path.join(dir, 'nanoclaw.db'));
      onTestFinished(() => {
        store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      });
      const { api, runs } = withRunTracking(store);
      return { api, runs, addGroup: (folder) => store.addGroup(group(folder)) };
    },
  ],
  [
    'memory',
    () => {
      const store = new MemoryTaskStore();
      return {
        api: store.asStoreApi(),
        runs: () => [...store.runs],
        addGroup: (folder) => store.addGroup(folder),
      };
    },
  ],
];

function newTask(overrides: Partial<NewTask> & { id: string }): NewTask {
  return {
    groupFolder: 'family',
    chatJid: 'family@g.us',
    prompt: 'say hi',
    scheduleType: 'interval',
    scheduleValue: '3600000',
    contextMode: 'isolated',
    nextRunAt: T0 + 60_000,
    ...overrides,
  };
}

function harnessOn(backend: Backend, options: Partial<SchedulerOptions> = {}) {
  const offered: Array<{ id: string; atMs: number }> = [];
  let accept = true;
  const setTimer = vi.fn((callback: () => void, delayMs: number) => setTimeout(callback, delayMs));
  const scheduler = new Scheduler({
    store: backend.api,
    timeZone: 'Europe/Berlin',
    now: () => Date.now(),
    setTimer,
    clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    onDue: (task: Task) => {
      offered.push({ id: task.id, atMs: Date.now() });
      return accept;
    },
    ...options,
  });
  return {
    store: backend.api,
    runs: backend.runs,
    scheduler,
    offered,
    setTimer,
    ids: () => offered.map((o) => o.id),
    setAccept: (value: boolean) => {
      accept = value;
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

describe.each(backends)('Scheduler on the %s store', (_name, makeBackend) => {
  let backend: Backend;
  beforeEach(() => {
    backend = makeBackend();
    backend.addGroup('family');
  });
  const harness = (options: Partial<SchedulerOptions> = {}) => harnessOn(backend, options);

  it('arms one timer for the earliest active task', () => {
    const h = harness();
    h.store.createTask(newTask({ id: 'late', nextRunAt: T0 + 60_000 }));
    h.store.createTask(newTask({ id: 'early', nextRunAt: T0 + 5_000 }));
    h.store.createTask(newTask({ id: 'paused', nextRunAt: T0 + 1_000 }));
    h.store.updateTask('paused', { status: 'paused' });
    h.scheduler.start();
    expect(vi.getTimerCount()).toBe(1);
    expect(h.scheduler.armedAtMs()).toBe(T0 + 5_000);
    expect(h.setTimer).toHaveBeenLastCalledWith(expect.any(Function), 5_000);
  });

  it('arms nothing when no task is scheduled, and re-arms on reschedule()', () => {
    const h = harness();
    h.scheduler.start();
    expect(vi.getTimerCount()).toBe(0);
    h.store.createTask(newTask({ id: 'a', nextRunAt: T0 + 30_000 }));
    h.scheduler.reschedule();
    expect(h.scheduler.armedAtMs()).toBe(T0 + 30_000);
    h.store.createTask(newTask({ id: 'b', nextRunAt: T0 + 10_000 }));
    h.scheduler.reschedule();
    expect(vi.getTimerCount()).toBe(1);
    expect(h.scheduler.armedAtMs()).toBe(T0 + 10_000);
    h.store.deleteTask('b');
    h.scheduler.reschedule();
    expect(h.scheduler.armedAtMs()).toBe(T0 + 30_000);
    h.store.deleteTask('a');
    h.scheduler.reschedule();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fires in the tick the task is due', () => {
    const h = harness();
    h.store.createTask(newTask({ id: 'a', nextRunAt: T0 + 10_000 }));
    h.scheduler.start();
    vi.advanceTimersByTime(9_999);
    expect(h.offered).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(h.offered).toEqual([{ id: 'a', atMs: T0 + 10_000 }]);
  });

  it('does not offer an in-flight task again, and arms for the next one', () => {
    const h = harness();
    h.store.createTask(newTask({ id: 'a', nextRunAt: T0 + 1_000 }));
    h.store.createTask(newTask({ id: 'b', nextRunAt: T0 + 20_000 }));
    h.scheduler.start();
    vi.advanceTimersByTime(1_000);
    expect(h.ids()).toEqual(['a']);
    expect(h.scheduler.inFlightTaskIds()).toEqual(['a']);
    // a is still due in the store (nextRunAt moves only when it finishes) but is skipped.
    expect(h.scheduler.armedAtMs()).toBe(T0 + 20_000);
    h.scheduler.reschedule();
    vi.advanceTimersByTime(20_000);
    expect(h.ids()).toEqual(['a', 'b']);
    vi.advanceTimersByTime(60 * 60_000);
    expect(h.ids()).toEqual(['a', 'b']);
  });

  it('records a finished interval run and keeps the next run on the schedule grid', () => {
    const h = harness();
    h.store.createTask(newTask({ id: 'a', nextRunAt: T0 + 1_000 }));
    h.scheduler.start();
    vi.advanceTimersByTime(1_000);
    const startedAtMs = Date.now();
    vi.advanceTimersByTime(7_000);
    h.scheduler.taskFinished('a', { status: 'success', result: 'done', startedAtMs });
    const task = h.store.getTask('a');
    expect(task).toMatchObject({
      status: 'active',
      // Due at T0 + 1 s, ran 7 s: the next slot is one interval after the due time, not after the finish.
      nextRunAt: T0 + 1_000 + 3_600_000,
      lastRunAt: startedAtMs,
      lastResult: 'done',
    });
    expect(h.runs()).toEqual([
      {
        id: 1,
        taskId: 'a',
        startedAt: startedAtMs,
        durationMs: 7_000,
        status: 'success',
        result: 'done',
        error: null,
      },
    ]);
    expect(h.scheduler.inFlightTaskIds()).toEqual([]);
    expect(h.scheduler.armedAtMs()).toBe(T0 + 1_000 + 3_600_000);
  });

  it('keeps an interval task on its grid over many runs that take time', async () => {
    const intervalMs = 60 * 60_000;
    const runMs = 7 * 60_000;
    const h = harness();
    h.store.createTask(newTask({ id: 'iv', scheduleValue: String(intervalMs), nextRunAt: T0 + 1_000 }));
    h.scheduler.start();
    const dueTimes: number[] = [];
    for (let run = 0; run < 6; run++) {
      await vi.advanceTimersToNextTimerAsync();
      const startedAtMs = Date.now();
      dueTimes.push(startedAtMs);
      vi.advanceTimersByTime(runMs);
      h.scheduler.taskFinished('iv', { status: 'success', result: 'ok', startedAtMs });
    }
    expect(dueTimes).toEqual([0, 1, 2, 3, 4, 5].map((k) => T0 + 1_000 + k * intervalMs));
    expect(h.ids()).toHaveLength(6);
    expect(h.store.getTask('iv')?.nextRunAt).toBe(T0 + 1_000 + 6 * intervalMs);
  });

  it('after five missed periods runs an interval task once, then on the next grid slot after now', () => {
    const intervalMs = 60 * 60_000;
    const dueMs = T0 - 5 * intervalMs - 20 * 60_000; // last due 5 h 20 min ago; the host was down since
    const h = harness();
    h.store.createTask(newTask({ id: 'iv', scheduleValue: String(intervalMs), nextRunAt: dueMs }));
    h.scheduler.start();
    expect(h.ids()).toEqual(['iv']);
    vi.advanceTimersByTime(3 * 60_000); // the catch-up run takes 3 minutes
    h.scheduler.taskFinished('iv', { status: 'success', result: 'ok', startedAtMs: T0 });
    // Grid slots: T0 - 20 min (missed), T0 + 40 min (next after now).
    const nextSlotMs = dueMs + 6 * intervalMs;
    expect(nextSlotMs).toBe(T0 + 40 * 60_000);
    expect(h.store.getTask('iv')?.nextRunAt).toBe(nextSlotMs);
    expect(h.runs()).toHaveLength(1);
    vi.advanceTimersByTime(nextSlotMs - Date.now() - 1);
    expect(h.ids()).toEqual(['iv']);
    vi.advanceTimersByTime(1);
    expect(h.ids()).toEqual(['iv', 'iv']);
  });

  it('marks a once task completed', () => {
    const h = harness();
    h.store.createTask(
      newTask({
        id: 'once',
        scheduleType: 'once',
        scheduleValue: '2025-06-02T10:00:05Z',
        nextRunAt: T0 + 5_000,
      }),
    );
    h.scheduler.start();
    vi.advanceTimersByTime(5_000);
    h.scheduler.taskFinished('once', { status: 'success', result: 'hi', startedAtMs: Date.now() });
    expect(h.store.getTask('once')).toMatchObject({ status: 'completed', nextRunAt: null, lastResult: 'hi' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('logs a failed run with its error and still moves a cron task on', () => {
    const h = harness();
    // 12:00 Berlin daily = 10:00Z in summer; T0 is exactly 10:00Z, so it is due now.
    h.store.createTask(
      newTask({ id: 'c', scheduleType: 'cron', scheduleValue: '0 12 * * *', nextRunAt: T0 }),
    );
    h.scheduler.start();
    expect(h.ids()).toEqual(['c']);
    vi.advanceTimersByTime(3_000);
    h.scheduler.taskFinished('c', { status: 'error', error: 'x'.repeat(5000), startedAtMs: T0 });
    const run = h.runs()[0];
    expect(run.status).toBe('error');
    expect(run.error?.length).toBe(2000);
    expect(run.error?.endsWith('…')).toBe(true);
    expect(h.store.getTask('c')).toMatchObject({
      status: 'active',
      nextRunAt: Date.parse('2025-06-03T10:00:00Z'),
    });
  });

  it('catches up once after downtime and computes the next run from now', () => {
    const h = harness();
    // Hourly task whose last due time was 5 hours ago: the host was down for five periods.
    h.store.createTask(
      newTask({
        id: 'hourly',
        scheduleType: 'cron',
        scheduleValue: '0 * * * *',
        nextRunAt: T0 - 5 * 3_600_000,
      }),
    );
    h.store.createTask(newTask({ id: 'iv', nextRunAt: T0 - 3 * 3_600_000 }));
    h.scheduler.start();
    // Offered at start-up, once each, without waiting for a timer.
    expect(h.ids()).toEqual(['hourly', 'iv']);
    vi.advanceTimersByTime(10 * 60_000); // runs take 10 minutes
    h.scheduler.taskFinished('hourly', { status: 'success', result: 'ok', startedAtMs: T0 });
    h.scheduler.taskFinished('iv', { status: 'success', result: 'ok', startedAtMs: T0 });
    expect(h.store.getTask('hourly')?.nextRunAt).toBe(T0 + 3_600_000);
    // Interval: due 3 h ago, so its grid's next slot after now is one hour after T0.
    expect(h.store.getTask('iv')?.nextRunAt).toBe(T0 + 3_600_000);
    expect(h.ids()).toEqual(['hourly', 'iv']);
    vi.advanceTimersByTime(50 * 60_000 - 1);
    expect(h.ids()).toEqual(['hourly', 'iv']);
    vi.advanceTimersByTime(1);
    expect(h.ids()).toEqual(['hourly', 'iv', 'hourly', 'iv']);
  });

  it('re-runs a task whose run was interrupted by a crash', () => {
    const first = harness();
    first.store.createTask(newTask({ id: 'a', nextRunAt: T0 + 1_000 }));
    first.scheduler.start();
    vi.advanceTimersByTime(1_000);
    expect(first.ids()).toEqual(['a']);
    first.scheduler.stop(); // the host dies before the run finishes
    vi.advanceTimersByTime(60_000);
    const second = harness();
    second.scheduler.start();
    expect(second.ids()).toEqual(['a']);
  });

  it('marks a task of a removed group as error, logs it and does not retry', () => {
    const h = harness();
    h.store.createTask(newTask({ id: 'orphan', groupFolder: 'gone', nextRunAt: T0 + 1_000 }));
    h.store.createTask(newTask({ id: 'ok', nextRunAt: T0 + 1_000 }));
    h.scheduler.start();
    vi.advanceTimersByTime(1_000);
    expect(h.ids()).toEqual(['ok']);
    expect(h.store.getTask('orphan')).toMatchObject({ status: 'error', nextRunAt: null });
    expect(h.runs()).toHaveLength(1);
    expect(h.runs()[0]).toMatchObject({ taskId: 'orphan', status: 'error', durationMs: 0 });
    expect(h.runs()[0].error).toContain('"gone" is no longer registered');
    vi.advanceTimersByTime(24 * 3_600_000);
    expect(h.runs()).toHaveLength(1);
    expect(h.ids()).toEqual(['ok']);
  });

  it('offers a refused task again after the retry delay without spinning', () => {
    const h = harness({ refusedRetryMs: 1_000 });
    h.store.createTask(newTask({ id: 'a', nextRunAt: T0 + 1_000 }));
    h.setAccept(false);
    h.scheduler.start();
    vi.advanceTimersByTime(1_000);
    expect(h.offered).toEqual([{ id: 'a', atMs: T0 + 1_000 }]);
    expect(h.scheduler.inFlightTaskIds()).toEqual([]);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(999);
    expect(h.offered).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(h.offered).toHaveLength(2);
    h.setAccept(true);
    vi.advanceTimersByTime(1_000);
    expect(h.offered.map((o) => o.atMs)).toEqual([T0 + 1_000, T0 + 2_000, T0 + 3_000]);
    expect(h.scheduler.inFlightTaskIds()).toEqual(['a']);
    vi.advanceTimersByTime(10 * 60_000);
    expect(h.offered).toHaveLength(3);
  });

  it('treats a throwing onDue like a refusal', () => {
    const h = harness({
      onDue: () => {
        throw new Error('queue broke');
      },
    });
    h.store.createTask(newTask({ id: 'a', nextRunAt: T0 }));
    expect(() => h.scheduler.start()).not.toThrow();
    expect(h.scheduler.armedAtMs()).toBe(T0 + 1_000);
  });

  it('clamps long delays to the timer ceiling and re-arms when that fires', () => {
    const h = harness();
    const farMs = T0 + 40 * 24 * 3_600_000;
    h.store.createTask(newTask({ id: 'far', nextRunAt: farMs }));
    h.scheduler.start();
    expect(h.setTimer).toHaveBeenLastCalledWith(expect.any(Function), MAX_TIMER_DELAY_MS);
    vi.advanceTimersByTime(MAX_TIMER_DELAY_MS);
    expect(h.offered).toEqual([]);
    expect(h.setTimer).toHaveBeenLastCalledWith(expect.any(Function), farMs - T0 - MAX_TIMER_DELAY_MS);
    vi.advanceTimersByTime(farMs - Date.now());
    expect(h.ids()).toEqual(['far']);
  });

  it('stop() clears the timer; runs finishing afterwards are recorded without re-arming', () => {
    const h = harness();
    h.store.createTask(newTask({ id: 'a', nextRunAt: T0 + 1_000 }));
    h.store.createTask(newTask({ id: 'b', nextRunAt: T0 + 60_000 }));
    h.scheduler.start();
    vi.advanceTimersByTime(1_000);
    h.scheduler.stop();
    expect(vi.getTimerCount()).toBe(0);
    h.scheduler.taskFinished('a', { status: 'success', result: 'ok', startedAtMs: T0 + 1_000 });
    expect(h.runs()).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(120_000);
    expect(h.ids()).toEqual(['a']);
  });

  it('handles a task deleted or paused while it ran', () => {
    const h = harness();
    h.store.createTask(newTask({ id: 'del', nextRunAt: T0 }));
    h.store.createTask(newTask({ id: 'pause', nextRunAt: T0 }));
    h.scheduler.start();
    expect(h.ids()).toEqual(['del', 'pause']);
    h.store.deleteTask('del');
    h.store.updateTask('pause', { status: 'paused', nextRunAt: null });
    h.scheduler.taskFinished('del', { status: 'success', startedAtMs: T0 });
    h.scheduler.taskFinished('pause', { status: 'success', result: 'r', startedAtMs: T0 });
    expect(h.runs().map((r) => r.taskId)).toEqual(['pause']);
    expect(h.store.getTask('pause')).toMatchObject({ status: 'paused', nextRunAt: null, lastResult: 'r' });
    expect(h.scheduler.inFlightTaskIds()).toEqual([]);
  });
});

describe('Scheduler fast path', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('asks the store only for the earliest due time when nothing is in flight or refused', () => {
    const store = new MemoryTaskStore();
    store.addGroup('family');
    const h = harnessOn({ api: store.asStoreApi(), runs: () => store.runs, addGroup: () => {} });
    store.createTask(newTask({ id: 'a', nextRunAt: T0 + 1_000 }));
    h.scheduler.start();
    expect(store.listTasksCalls).toBe(0);
    vi.advanceTimersByTime(1_000); // 'a' is in flight now: re-arming has to look past it
    expect(store.listTasksCalls).toBe(1);
    h.scheduler.taskFinished('a', { status: 'success', startedAtMs: T0 + 1_000 });
    h.scheduler.reschedule();
    expect(store.listTasksCalls).toBe(1);
  });
});
