// The refusal log (SPEC §10.8). Codes are checked here against the closed sets
// in core/audit.ts, so a typo or a smuggled payload in `action`/`reason` is
// refused loudly instead of being stored. An agent can trigger refusals as fast
// as it likes and choose their targets, so targets are canonicalised and short,
// identical refusals of one run within a window only count up the `count` of the
// row that is already there, and past a cap of distinct rows per run the rest
// of that run's refusals fold into one `audit too_many_records` row.

import path from 'node:path';
import type Database from 'better-sqlite3';
import {
  AUDIT_ACTIONS,
  AUDIT_REASONS,
  type AuditAction,
  type AuditReason,
  type AuditRecord,
  type NewAuditRecord,
} from '../core/audit.js';
import { StoreInputError } from './errors.js';
import { truncateText } from './rows.js';

/** A target is a host, a path or a tool name; anything longer is cut. */
export const MAX_TARGET_CHARS = 160;
/** Identical refusals of one run this close together share one row. */
export const DEFAULT_AGGREGATE_WINDOW_MS = 60_000;
/** Distinct rows one run may write before the rest fold into one overflow row. */
export const DEFAULT_MAX_ROWS_PER_RUN = 100;

export interface AuditLimits {
  aggregateWindowMs: number;
  maxRowsPerRun: number;
}

// Control and format characters (newlines, escapes, bidi overrides, zero-width
// marks) would let a target rewrite how `nanoclaw audit` looks in a terminal.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu;

/**
 * The stored form of a target: invisible characters stripped, whitespace
 * collapsed, hosts lower-cased, paths normalised (no query, no `..`), at most
 * MAX_TARGET_CHARS characters. Null for nothing left.
 */
export function canonicalTarget(action: string, target: string | null): string | null {
  if (target === null) return null;
  let text = target.replace(INVISIBLE, '').replace(/\s+/g, ' ').trim();
  if (action === 'egress') text = text.toLowerCase();
  if (action === 'model_request' || action === 'mount') {
    const withoutQuery = action === 'model_request' ? text.replace(/[?#].*$/s, '') : text;
    text = withoutQuery === '' ? '' : path.posix.normalize(withoutQuery);
  }
  return text === '' ? null : truncateText(text, MAX_TARGET_CHARS);
}

const KNOWN_ACTIONS: ReadonlySet<string> = new Set(AUDIT_ACTIONS);
const KNOWN_REASONS: ReadonlySet<string> = new Set(AUDIT_REASONS);

export interface AuditFilter {
  sinceIso?: string;
  group?: string;
  action?: AuditAction;
  limit?: number;
}

interface AuditRow {
  id: number;
  time: string;
  group_folder: string | null;
  run_id: string | null;
  action: AuditAction;
  target: string | null;
  reason: AuditReason;
  count: number;
}

interface AuditParams {
  time: string;
  timeMs: number;
  group: string | null;
  runId: string | null;
  action: string;
  target: string | null;
  reason: string;
}

interface AuditQuery {
  sinceMs: number | null;
  group: string | null;
  action: string | null;
  limit: number;
}

function toAuditRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    time: row.time,
    group: row.group_folder,
    runId: row.run_id,
    action: row.action,
    target: row.target,
    reason: row.reason,
    count: row.count,
  };
}

function parseIsoOrThrow(iso: string, what: string): number {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) {
    throw new StoreInputError(`${what} '${iso}' is not an ISO time, e.g. '2025-01-31T09:00:00Z'`);
  }
  return ms;
}

interface RunMatch {
  runId: string;
  action: string;
  reason: string;
  target: string | null;
  sinceMs: number;
}

export class AuditTable {
  private readonly insertStmt: Database.Statement<[AuditParams]>;
  private readonly listStmt: Database.Statement<[AuditQuery], AuditRow>;
  private readonly findSameStmt: Database.Statement<[RunMatch], { id: number }>;
  private readonly bumpStmt: Database.Statement<[number]>;
  private readonly runRowsStmt: Database.Statement<[string], { n: number }>;
  private readonly writeTx: Database.Transaction<(params: AuditParams) => void>;
  private readonly limits: AuditLimits;

  constructor(db: Database.Database, limits: Partial<AuditLimits> = {}) {
    this.limits = {
      aggregateWindowMs: limits.aggregateWindowMs ?? DEFAULT_AGGREGATE_WINDOW_MS,
      maxRowsPerRun: limits.maxRowsPerRun ?? DEFAULT_MAX_ROWS_PER_RUN,
    };
    this.insertStmt = db.prepare(`
      INSERT INTO audit (time, time_ms, group_folder, run_id, action, target, reason, count)
      VALUES (@time, @timeMs, @group, @runId, @action, @target, @reason, 1)`);
    // Newest `limit` rows are selected, then put back in time order (see listAudit).
    this.listStmt = db.prepare(`
      SELECT id, time, group_folder, run_id, action, target, reason, count FROM (
        SELECT * FROM audit
        WHERE (@sinceMs IS NULL OR time_ms >= @sinceMs)
          AND (@group IS NULL OR group_folder = @group)
          AND (@action IS NULL OR action = @action)
        ORDER BY time_ms DESC, id DESC
        LIMIT @limit
      ) ORDER BY time_ms, id`);
    this.findSameStmt = db.prepare(`
      SELECT id FROM audit
      WHERE run_id = @runId AND action = @action AND reason = @reason AND target IS @target
        AND time_ms > @sinceMs
      ORDER BY id DESC LIMIT 1`);
    this.bumpStmt = db.prepare('UPDATE audit SET count = count + 1 WHERE id = ?');
    this.runRowsStmt = db.prepare(`SELECT COUNT(*) AS n FROM audit WHERE run_id = ? AND action != 'audit'`);
    // One transaction per record: the look-up and the write must not interleave with another writer.
    this.writeTx = db.transaction((params: AuditParams) => this.writeUnlocked(params));
  }

  audit(record: NewAuditRecord): void {
    if (!KNOWN_ACTIONS.has(record.action)) {
      throw new StoreInputError(
        `unknown audit action '${record.action}'; known: ${AUDIT_ACTIONS.join(', ')}`,
      );
    }
    if (!KNOWN_REASONS.has(record.reason)) {
      throw new StoreInputError(
        `unknown audit reason '${record.reason}'; known: ${AUDIT_REASONS.join(', ')}`,
      );
    }
    const time = record.time ?? new Date().toISOString();
    this.writeTx.immediate({
      time,
      timeMs: parseIsoOrThrow(time, 'audit time'),
      group: record.group,
      runId: record.runId,
      action: record.action,
      target: canonicalTarget(record.action, record.target),
      reason: record.reason,
    });
  }

  private writeUnlocked(params: AuditParams): void {
    const { runId } = params;
    // Refusals outside any run (none today) are rare by nature: one row each.
    if (runId === null) {
      this.insertStmt.run(params);
      return;
    }
    const same = this.findSameStmt.get({
      runId,
      action: params.action,
      reason: params.reason,
      target: params.target,
      sinceMs: params.timeMs - this.limits.aggregateWindowMs,
    });
    if (same) {
      this.bumpStmt.run(same.id);
      return;
    }
    const rows = this.runRowsStmt.get(runId)?.n ?? 0;
    if (rows < this.limits.maxRowsPerRun) {
      this.insertStmt.run(params);
      return;
    }
    // Over the cap: one "and N more" row per run, whatever the refusal was.
    const overflow = { ...params, action: 'audit', reason: 'too_many_records', target: null };
    const existing = this.findSameStmt.get({
      runId,
      action: overflow.action,
      reason: overflow.reason,
      target: null,
      sinceMs: Number.MIN_SAFE_INTEGER,
    });
    if (existing) this.bumpStmt.run(existing.id);
    else this.insertStmt.run(overflow);
  }

  /**
   * Records oldest first, so `nanoclaw audit` reads like a log; with `limit`,
   * the most recent `limit` matching records (still oldest first).
   */
  listAudit(filter: AuditFilter = {}): AuditRecord[] {
    return this.listStmt
      .all({
        sinceMs: filter.sinceIso === undefined ? null : parseIsoOrThrow(filter.sinceIso, 'sinceIso'),
        group: filter.group ?? null,
        action: filter.action ?? null,
        limit: filter.limit ?? -1,
      })
      .map(toAuditRecord);
  }
}
