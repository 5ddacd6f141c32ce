// SPEC §10.8 under a flood: identical refusals of one run share a row and count
// up, a run's distinct rows are capped with one "and N more" row, and targets
// are stored canonical and short, never as the attacker wrote them.

import Database from 'better-sqlite3';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NewAuditRecord } from '../../../src/core/audit.js';
import { AuditTable, canonicalTarget, DEFAULT_MAX_ROWS_PER_RUN } from '../../../src/store/audit.js';
import { MIGRATIONS, migrate } from '../../../src/store/migrations.js';
import { tempDir, tempStore } from './helpers.js';

const T0 = Date.parse('2025-05-01T10:00:00Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();

function refusal(overrides: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return {
    group: 'family',
    runId: 'run-1',
    action: 'egress',
    target: 'evil.example:443',
    reason: 'host_not_allowlisted',
    time: at(0),
    ...overrides,
  };
}

describe('audit aggregation', () => {
  it('folds 1 500 identical refusals of a run into one row with count 1500', () => {
    const { store } = tempStore();
    for (let i = 0; i < 1500; i++) store.audit(refusal({ time: at(i * 2) }));
    const rows = store.listAudit();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ runId: 'run-1', target: 'evil.example:443', count: 1500, time: at(0) });
  });

  it('keeps rows apart per run, per reason, per target, and once the window has passed', () => {
    const { store } = tempStore();
    store.audit(refusal());
    store.audit(refusal({ runId: 'run-2' }));
    store.audit(refusal({ reason: 'port_not_allowed' }));
    store.audit(refusal({ target: 'other.example:443' }));
    store.audit(refusal({ time: at(59_999) }));
    store.audit(refusal({ time: at(60_000) }));
    store.audit(refusal({ runId: null, time: at(1) }));
    store.audit(refusal({ runId: null, time: at(2) }));
    expect(store.listAudit().map((r) => [r.runId, r.reason, r.target, r.count])).toEqual([
      ['run-1', 'host_not_allowlisted', 'evil.example:443', 2],
      ['run-2', 'host_not_allowlisted', 'evil.example:443', 1],
      ['run-1', 'port_not_allowed', 'evil.example:443', 1],
      ['run-1', 'host_not_allowlisted', 'other.example:443', 1],
      [null, 'host_not_allowlisted', 'evil.example:443', 1],
      [null, 'host_not_allowlisted', 'evil.example:443', 1],
      // 60 s after the first, the window of that row is over: a new row starts.
      ['run-1', 'host_not_allowlisted', 'evil.example:443', 1],
    ]);
  });

  it('caps distinct rows per run and folds the rest into one too_many_records row; counts add up', () => {
    const { store } = tempStore();
    const distinct = DEFAULT_MAX_ROWS_PER_RUN + 400;
    for (let i = 0; i < distinct; i++) store.audit(refusal({ target: `host-${i}.example:443` }));
    for (let i = 0; i < 50; i++) store.audit(refusal({ target: 'host-0.example:443' }));
    store.audit(refusal({ runId: 'run-2' }));
    const rows = store.listAudit({ group: 'family' });
    const run1 = rows.filter((r) => r.runId === 'run-1');
    expect(run1).toHaveLength(DEFAULT_MAX_ROWS_PER_RUN + 1);
    const overflow = run1.filter((r) => r.action === 'audit');
    expect(overflow).toEqual([
      expect.objectContaining({ reason: 'too_many_records', target: null, count: 400 }),
    ]);
    expect(run1.reduce((sum, r) => sum + r.count, 0)).toBe(distinct + 50);
    // Another run is not affected by the first one's cap.
    expect(rows.filter((r) => r.runId === 'run-2')).toEqual([
      expect.objectContaining({ action: 'egress', count: 1 }),
    ]);
  });

  it('honours smaller limits passed to the table', () => {
    const dir = tempDir();
    const db = new Database(path.join(dir, 'audit.db'));
    migrate(db, MIGRATIONS, 'audit.db');
    const table = new AuditTable(db, { aggregateWindowMs: 10, maxRowsPerRun: 2 });
    for (const [ms, target] of [
      [0, 'a'],
      [5, 'a'],
      [11, 'a'],
      [12, 'b'],
      [13, 'c'],
    ] as const) {
      table.audit(refusal({ time: at(ms), target }));
    }
    expect(table.listAudit().map((r) => [r.action, r.target, r.count])).toEqual([
      ['egress', 'a', 2],
      ['egress', 'a', 1],
      ['audit', null, 2],
    ]);
    db.close();
  });
});

describe('canonicalTarget', () => {
  it('strips control and format characters, collapses whitespace and bounds the length', () => {
    expect(
      canonicalTarget('tool_call', 'send_message:\u001b[31mred\u001b[0m\r\nFORGED\u202e\u200b x  y'),
    ).toBe('send_message:[31mred[0mFORGED x y');
    expect(canonicalTarget('tool_call', 'z'.repeat(5000))).toHaveLength(160);
    expect(canonicalTarget('tool_call', '\u0000\u0007 ')).toBeNull();
    expect(canonicalTarget('tool_call', null)).toBeNull();
  });

  it('lower-cases egress hosts and normalises model and mount paths', () => {
    expect(canonicalTarget('egress', 'EVIL.Example.COM:443')).toBe('evil.example.com:443');
    expect(canonicalTarget('model_request', '/v1/../v1//models?api_key=sk-secret#frag')).toBe('/v1/models');
    expect(canonicalTarget('mount', '/home/u/projects/../.ssh/')).toBe('/home/u/.ssh/');
    expect(canonicalTarget('mount', '~/projects/link')).toBe('~/projects/link');
  });
});

describe('migration 3 (audit count)', () => {
  it('keeps old rows as count 1', () => {
    const dir = tempDir();
    const db = new Database(path.join(dir, 'old.db'));
    migrate(db, MIGRATIONS.slice(0, 2), 'old.db');
    db.prepare(
      `INSERT INTO audit (time, time_ms, group_folder, run_id, action, target, reason)
       VALUES ('2025-01-01T00:00:00Z', 1735689600000, 'family', 'run-old', 'egress', 'x:443', 'host_not_allowlisted')`,
    ).run();
    migrate(db, MIGRATIONS, 'old.db');
    expect(new AuditTable(db).listAudit()).toEqual([expect.objectContaining({ runId: 'run-old', count: 1 })]);
    db.close();
  });
});
