import { describe, expect, it } from 'vitest';
import { MAX_LOGGED_TEXT_CHARS } from '../../../src/store/rows.js';
import { tempStore } from './helpers.js';

describe('outbox', () => {
  it('enqueues chunks in order and returns them pending, oldest first', () => {
    const { store } = tempStore();
    const ids = store.enqueueOutbound('family@g.us', ['part 1', 'part 2', 'part 3'], 1_000);
    const otherIds = store.enqueueOutbound('other@g.us', ['x'], 1_500);
    expect(ids).toHaveLength(3);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(otherIds[0]).toBeGreaterThan(ids[2]);

    expect(store.getOutbound(ids[0])).toEqual({
      id: ids[0],
      chatJid: 'family@g.us',
      text: 'part 1',
      status: 'pending',
      attempts: 0,
      nextAttemptAt: 1_000,
      lastError: null,
      createdAt: 1_000,
    });
    expect(store.pendingOutbound(1_000).map((i) => i.text)).toEqual(['part 1', 'part 2', 'part 3']);
    expect(store.pendingOutbound(2_000).map((i) => i.id)).toEqual([...ids, ...otherIds]);
    expect(store.pendingOutbound(2_000, 2).map((i) => i.id)).toEqual(ids.slice(0, 2));
    expect(store.pendingOutbound(999)).toEqual([]);
    expect(store.nextOutboundAttemptAt()).toBe(1_000);
    expect(store.enqueueOutbound('family@g.us', [], 1_000)).toEqual([]);
    expect(store.getOutbound(9_999)).toBeUndefined();
  });

  it('records failed attempts with backoff, then sent or failed as final states', () => {
    const { store } = tempStore();
    const [a, b, c] = store.enqueueOutbound('family@g.us', ['a', 'b', 'c'], 1_000);

    store.markAttemptFailed(a, 'not connected', 6_000);
    expect(store.getOutbound(a)).toMatchObject({
      status: 'pending',
      attempts: 1,
      nextAttemptAt: 6_000,
      lastError: 'not connected',
    });
    expect(store.pendingOutbound(2_000).map((i) => i.id)).toEqual([b, c]);
    expect(store.pendingOutbound(6_000).map((i) => i.id)).toEqual([a, b, c]);

    store.markAttemptFailed(a, 'timeout', 11_000);
    expect(store.getOutbound(a)).toMatchObject({ attempts: 2, nextAttemptAt: 11_000, lastError: 'timeout' });

    store.markSent(b);
    expect(store.getOutbound(b)).toMatchObject({ status: 'sent', attempts: 1 });
    store.markFailed(c, 'x'.repeat(9_000));
    const failed = store.getOutbound(c)!;
    expect(failed).toMatchObject({ status: 'failed', attempts: 1 });
    expect(failed.lastError!.length).toBe(MAX_LOGGED_TEXT_CHARS);

    expect(store.pendingOutbound(100_000).map((i) => i.id)).toEqual([a]);
    expect(store.nextOutboundAttemptAt()).toBe(11_000);

    // Final states are final: a late confirmation or failure changes nothing.
    store.markAttemptFailed(b, 'late', 50_000);
    store.markSent(c);
    expect(store.getOutbound(b)).toMatchObject({ status: 'sent', attempts: 1, lastError: null });
    expect(store.getOutbound(c)).toMatchObject({ status: 'failed' });

    store.markSent(a);
    expect(store.nextOutboundAttemptAt()).toBeNull();
  });

  it('survives closing and reopening the same file', () => {
    const handle = tempStore();
    const ids = handle.store.enqueueOutbound('family@g.us', ['one', 'two'], 1_000);
    handle.store.markAttemptFailed(ids[0], 'disconnected', 5_000);

    const reopened = handle.reopen();
    expect(reopened.pendingOutbound(10_000).map((i) => [i.id, i.text, i.attempts])).toEqual([
      [ids[0], 'one', 1],
      [ids[1], 'two', 0],
    ]);
    expect(reopened.nextOutboundAttemptAt()).toBe(1_000);
  });

  it('prunes only finished items older than the cutoff', () => {
    const { store } = tempStore();
    const [sent, failed, pending] = store.enqueueOutbound('family@g.us', ['s', 'f', 'p'], 1_000);
    const [recent] = store.enqueueOutbound('family@g.us', ['r'], 5_000);
    store.markSent(sent);
    store.markFailed(failed, 'gone');
    store.markSent(recent);
    expect(store.pruneOutbound(2_000)).toBe(2);
    expect(store.getOutbound(sent)).toBeUndefined();
    expect(store.getOutbound(failed)).toBeUndefined();
    expect(store.getOutbound(pending)).toMatchObject({ status: 'pending' });
    expect(store.getOutbound(recent)).toMatchObject({ status: 'sent' });
  });
});
