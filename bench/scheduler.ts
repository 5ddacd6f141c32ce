// How late the scheduler hands due tasks to the queue (SPEC §6.3: a task starts
// within 1 s of its due time when a slot is free): 200 tasks due over ~2 s of
// real time, real timers, the real SQLite Store on a temp file.
import { makeGroup } from '../test/support/groups.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { Scheduler } from '../src/scheduler/scheduler.js';
import { openStore } from '../src/store/store.js';
import { percentile, type BenchFigure } from './figure.js';

const TASK_COUNT = 200;
const SPREAD_MS = 2000;
const LEAD_MS = 200;

export async function benchScheduler(): Promise<BenchFigure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-bench-scheduler-'));
  const store = openStore(path.join(dir, 'nanoclaw.db'));
  // Sub-millisecond clock, so lateness is not rounded to whole ms.
  const nowMs = (): number => performance.timeOrigin + performance.now();
  try {
    store.addGroup(makeGroup('bench', { requiresTrigger: false }));
    const startMs = Math.ceil(nowMs()) + LEAD_MS;
    for (let i = 0; i < TASK_COUNT; i++) {
      store.createTask({
        id: `bench-${i}`,
        groupFolder: 'bench',
        chatJid: 'bench@g.us',
        prompt: 'bench',
        scheduleType: 'once',
        scheduleValue: new Date(startMs).toISOString(),
        contextMode: 'isolated',
        nextRunAt: startMs + Math.round((i * SPREAD_MS) / TASK_COUNT),
      });
    }

    const latenessMs: number[] = [];
    let finishAll: () => void = () => {};
    const allDone = new Promise<void>((resolve) => {
      finishAll = resolve;
    });
    let finished = 0;
    const scheduler: Scheduler = new Scheduler({
      store,
      timeZone: 'UTC',
      now: nowMs,
      setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
      clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      onDue: (task) => {
        // onDue is where a run starts; the run itself "finishes" on the next turn.
        latenessMs.push(nowMs() - (task.nextRunAt as number));
        const startedAtMs = nowMs();
        setImmediate(() => {
          scheduler.taskFinished(task.id, { status: 'success', result: 'ok', startedAtMs });
          finished += 1;
          if (finished === TASK_COUNT) finishAll();
        });
        return true;
      },
    });
    scheduler.start();
    const timeout = setTimeout(finishAll, SPREAD_MS + LEAD_MS + 10_000);
    await allDone;
    clearTimeout(timeout);
    scheduler.stop();
    if (latenessMs.length !== TASK_COUNT) {
      throw new Error(`scheduler bench: only ${latenessMs.length} of ${TASK_COUNT} tasks were offered`);
    }
    return [{ name: 'scheduler_lateness_p99_ms', value: round(percentile(latenessMs, 99)), unit: 'ms' }];
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
