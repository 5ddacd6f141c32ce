import { describe, expect, it } from 'vitest';
import { RUN_ERROR_MAX_CHARS } from '../../../src/store/runs.js';
import { tempStore } from './helpers.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const usage = (inputTokens: number, outputTokens: number) => ({
  inputTokens,
  outputTokens,
  cacheReadTokens: 1,
  cacheWriteTokens: 2,
});

describe('runs', () => {
  it('records start and end, newest first, with tokens summed from the usage rows of each run', () => {
    const { store } = tempStore();
    store.runStarted({ runId: 'r1', groupFolder: 'main', startedAtMs: T0 });
    store.recordUsage({ groupFolder: 'main', runId: 'r1', taskId: null, usage: usage(10, 5), atMs: T0 + 1 });
    store.recordUsage({ groupFolder: 'main', runId: 'r1', taskId: null, usage: usage(20, 7), atMs: T0 + 2 });
    expect(store.runEnded({ runId: 'r1', endedAtMs: T0 + 3_000, outcome: 'ok' })).toBe(true);
    store.runStarted({ runId: 'r2', groupFolder: 'family', taskId: 'task-1', startedAtMs: T0 + 10_000 });

    expect(store.listRuns()).toEqual([
      {
        runId: 'r2',
        groupFolder: 'family',
        taskId: 'task-1',
        startedAtMs: T0 + 10_000,
        endedAtMs: null,
        outcome: null,
        error: null,
        tokens: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
      },
      {
        runId: 'r1',
        groupFolder: 'main',
        taskId: null,
        startedAtMs: T0,
        endedAtMs: T0 + 3_000,
        outcome: 'ok',
        error: null,
        tokens: { inputTokens: 30, outputTokens: 12, cacheReadTokens: 2, cacheWriteTokens: 4 },
      },
    ]);
  });

  it('filters by group and limits, newest first', () => {
    const { store } = tempStore();
    for (let i = 0; i < 5; i++) {
      store.runStarted({ runId: `m${i}`, groupFolder: 'main', startedAtMs: T0 + i });
      store.runStarted({ runId: `f${i}`, groupFolder: 'family', startedAtMs: T0 + i });
    }
    expect(store.listRuns({ group: 'family', limit: 2 }).map((r) => r.runId)).toEqual(['f4', 'f3']);
    expect(store.listRuns({ limit: 3 }).map((r) => r.runId)).toEqual(['f4', 'm4', 'f3']);
    expect(() => store.listRuns({ limit: 0 })).toThrow(/limit must be a whole number >= 1/);
  });

  it('ends a run once, truncates its error, and refuses to rewrite a finished outcome', () => {
    const { store } = tempStore();
    store.runStarted({ runId: 'r1', groupFolder: 'main', startedAtMs: T0 });
    expect(
      store.runEnded({ runId: 'r1', endedAtMs: T0 + 1, outcome: 'refused', error: 'x'.repeat(5000) }),
    ).toBe(true);
    expect(store.runEnded({ runId: 'r1', endedAtMs: T0 + 2, outcome: 'ok' })).toBe(false);
    expect(store.runEnded({ runId: 'unknown', endedAtMs: T0 + 2, outcome: 'ok' })).toBe(false);
    const [run] = store.listRuns();
    expect(run).toMatchObject({ outcome: 'refused', endedAtMs: T0 + 1 });
    expect(run.error).toHaveLength(RUN_ERROR_MAX_CHARS);
    expect(run.error?.endsWith('…')).toBe(true);
  });

  it('marks runs left open by a stopped host as interrupted, and only those', () => {
    const handle = tempStore();
    handle.store.runStarted({ runId: 'open', groupFolder: 'main', startedAtMs: T0 });
    handle.store.runStarted({ runId: 'done', groupFolder: 'main', startedAtMs: T0 });
    handle.store.runEnded({ runId: 'done', endedAtMs: T0 + 5, outcome: 'error', error: 'boom' });
    const store = handle.reopen();
    expect(store.interruptOpenRuns(T0 + 60_000)).toBe(1);
    expect(store.interruptOpenRuns(T0 + 70_000)).toBe(0);
    const byId = Object.fromEntries(store.listRuns().map((r) => [r.runId, r]));
    expect(byId.open).toMatchObject({ outcome: 'interrupted', endedAtMs: T0 + 60_000 });
    expect(byId.done).toMatchObject({ outcome: 'error', error: 'boom', endedAtMs: T0 + 5 });
  });
});
