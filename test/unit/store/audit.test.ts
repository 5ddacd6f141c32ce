import { describe, expect, it } from 'vitest';
import type { AuditAction, AuditReason, NewAuditRecord } from '../../../src/core/audit.js';
import { StoreInputError } from '../../../src/store/errors.js';
import { tempStore } from './helpers.js';

function record(overrides: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return {
    group: 'family',
    runId: 'run-1',
    action: 'tool_call',
    target: 'send_message',
    reason: 'not_authorized',
    ...overrides,
  };
}

describe('audit', () => {
  it('stores records with a default time and lists them oldest first', () => {
    const { store } = tempStore();
    const before = Date.now();
    store.audit(record());
    store.audit(
      record({
        group: null,
        runId: null,
        action: 'egress',
        target: 'evil.example',
        reason: 'host_not_allowlisted',
      }),
    );
    const records = store.listAudit();
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      group: 'family',
      runId: 'run-1',
      action: 'tool_call',
      target: 'send_message',
      reason: 'not_authorized',
    });
    expect(Date.parse(records[0].time)).toBeGreaterThanOrEqual(before - 1);
    expect(records[1]).toMatchObject({ group: null, runId: null, action: 'egress', target: 'evil.example' });
    expect(records[1].id).toBeGreaterThan(records[0].id);
  });

  it('filters by time, group and action; limit keeps the most recent, still oldest first', () => {
    const { store } = tempStore();
    store.audit(record({ time: '2025-03-01T10:00:00Z', target: 'a' }));
    store.audit(record({ time: '2025-03-01T11:00:00Z', target: 'b', group: 'main' }));
    store.audit(
      record({ time: '2025-03-01T12:00:00Z', target: 'c', action: 'mount', reason: 'blocked_pattern' }),
    );
    store.audit(record({ time: '2025-03-01T13:00:00Z', target: 'd' }));
    // Out of order on purpose: listing follows the recorded time, not insertion.
    store.audit(record({ time: '2025-03-01T09:00:00Z', target: 'early' }));

    const targets = (filter: Parameters<typeof store.listAudit>[0]): (string | null)[] =>
      store.listAudit(filter).map((r) => r.target);
    expect(targets({})).toEqual(['early', 'a', 'b', 'c', 'd']);
    expect(targets({ sinceIso: '2025-03-01T11:00:00Z' })).toEqual(['b', 'c', 'd']);
    // An offset is compared as an instant: 13:30+02:00 is 11:30Z.
    expect(targets({ sinceIso: '2025-03-01T13:30:00+02:00' })).toEqual(['c', 'd']);
    expect(targets({ group: 'main' })).toEqual(['b']);
    expect(targets({ action: 'mount' })).toEqual(['c']);
    expect(targets({ group: 'family', action: 'tool_call' })).toEqual(['early', 'a', 'd']);
    expect(targets({ limit: 2 })).toEqual(['c', 'd']);
    expect(targets({ group: 'family', limit: 2, sinceIso: '2025-03-01T00:00:00Z' })).toEqual(['c', 'd']);
    expect(() => store.listAudit({ sinceIso: 'yesterday' })).toThrow(StoreInputError);
  });

  it('refuses unknown action or reason codes and stores nothing', () => {
    const { store } = tempStore();
    expect(() => store.audit(record({ action: 'exfiltrate' as AuditAction }))).toThrow(
      /unknown audit action 'exfiltrate'/,
    );
    expect(() => store.audit(record({ reason: 'because I said so' as AuditReason }))).toThrow(
      /unknown audit reason/,
    );
    expect(() => store.audit(record({ time: 'not a time' }))).toThrow(StoreInputError);
    expect(store.listAudit()).toEqual([]);
  });

  it('bounds the target length', () => {
    const { store } = tempStore();
    store.audit(record({ target: 'h'.repeat(10_000) }));
    expect(store.listAudit()[0].target!.length).toBeLessThanOrEqual(160);
  });
});
