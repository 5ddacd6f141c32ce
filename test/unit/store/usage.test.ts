import { describe, expect, it } from 'vitest';
import type { TokenUsage } from '../../../src/core/types.js';
import { StoreInputError } from '../../../src/store/errors.js';
import { tempStore } from './helpers.js';

function tokens(input: number, output = 0, cacheRead = 0, cacheWrite = 0): TokenUsage {
  return {
    inputTokens: input,
    outputTokens: output,
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
  };
}

const at = (iso: string): number => Date.parse(iso);

describe('usage', () => {
  it('sums all four token kinds per group and UTC day', () => {
    const { store } = tempStore();
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r1',
      taskId: null,
      usage: tokens(100, 20, 5, 1),
      atMs: at('2025-03-01T00:00:00Z'),
    });
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r1',
      taskId: null,
      usage: tokens(10, 2),
      atMs: at('2025-03-01T23:59:59.999Z'),
    });
    // Same local evening in UTC-5, but the next UTC day.
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r2',
      taskId: 't1',
      usage: tokens(1000),
      atMs: at('2025-03-01T20:00:00-05:00'),
    });
    store.recordUsage({
      groupFolder: 'main',
      runId: 'r3',
      taskId: null,
      usage: tokens(7),
      atMs: at('2025-03-01T12:00:00Z'),
    });

    expect(store.tokensUsedOnDay('family', at('2025-03-01T08:00:00Z'))).toBe(138);
    expect(store.tokensUsedOnDay('family', at('2025-03-02T08:00:00Z'))).toBe(1000);
    expect(store.tokensUsedOnDay('family', at('2025-03-03T08:00:00Z'))).toBe(0);
    expect(store.tokensUsedOnDay('nobody', at('2025-03-01T08:00:00Z'))).toBe(0);
  });

  it('groups by day and group, with filters', () => {
    const { store } = tempStore();
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r1',
      taskId: null,
      usage: tokens(100, 20, 5, 1),
      atMs: at('2025-03-01T10:00:00Z'),
    });
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r1',
      taskId: null,
      usage: tokens(10, 2, 0, 0),
      atMs: at('2025-03-01T11:00:00Z'),
    });
    store.recordUsage({
      groupFolder: 'main',
      runId: 'r2',
      taskId: null,
      usage: tokens(7, 1, 0, 0),
      atMs: at('2025-03-01T12:00:00Z'),
    });
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r3',
      taskId: 't1',
      usage: tokens(3, 3, 3, 3),
      atMs: at('2025-03-02T10:00:00Z'),
    });

    expect(store.usageByDay()).toEqual([
      {
        day: '2025-03-01',
        groupFolder: 'family',
        inputTokens: 110,
        outputTokens: 22,
        cacheReadTokens: 5,
        cacheWriteTokens: 1,
        requests: 2,
      },
      {
        day: '2025-03-01',
        groupFolder: 'main',
        inputTokens: 7,
        outputTokens: 1,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        requests: 1,
      },
      {
        day: '2025-03-02',
        groupFolder: 'family',
        inputTokens: 3,
        outputTokens: 3,
        cacheReadTokens: 3,
        cacheWriteTokens: 3,
        requests: 1,
      },
    ]);
    expect(store.usageByDay({ sinceDay: '2025-03-02' }).map((r) => r.day)).toEqual(['2025-03-02']);
    expect(store.usageByDay({ group: 'main' }).map((r) => r.groupFolder)).toEqual(['main']);
    expect(store.usageByDay({ group: 'family', sinceDay: '2025-03-01' })).toHaveLength(2);
    expect(() => store.usageByDay({ sinceDay: '1 March' })).toThrow(StoreInputError);
  });

  it('sums one run and returns zeros for an unknown run', () => {
    const { store } = tempStore();
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r1',
      taskId: null,
      usage: tokens(1, 2, 3, 4),
      atMs: 1_000,
    });
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r1',
      taskId: null,
      usage: tokens(10, 20, 30, 40),
      atMs: 2_000,
    });
    store.recordUsage({ groupFolder: 'family', runId: 'r2', taskId: null, usage: tokens(5), atMs: 3_000 });
    expect(store.usageForRun('r1')).toEqual(tokens(11, 22, 33, 44));
    expect(store.usageForRun('none')).toEqual(tokens(0));
  });

  it('refuses negative token counts', () => {
    const { store } = tempStore();
    expect(() =>
      store.recordUsage({ groupFolder: 'family', runId: 'r1', taskId: null, usage: tokens(-1), atMs: 1_000 }),
    ).toThrow(/usage.inputTokens must be a number >= 0/);
    expect(store.usageForRun('r1')).toEqual(tokens(0));
  });
});
