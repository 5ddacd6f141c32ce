// The refusal log (SPEC §10.8). Codes are checked here against the closed sets
// in core/audit.ts, so a typo or a smuggled payload in `action`/`reason` is
// refused loudly instead of being stored. Targets are bounded for the same reason.

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
const MAX_TARGET_CHARS = 512;

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
  };
}

function parseIsoOrThrow(iso: string, what: string): number {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) {
    throw new StoreInputError(`${what} '${iso}' is not an ISO time, e.g. '2025-01-31T09:00:00Z'`);
  }
  return ms;
}

export class AuditTable {
  private readonly insertStmt: Database.Statement<[AuditParams]>;
  private readonly listStmt: Database.Statement<[AuditQuery], AuditRow>;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(`
      INSERT INTO audit (time, time_ms, group_folder, run_id, action, target, reason)
      VALUES (@time, @timeMs, @group, @runId, @action, @target, @reason)`);
    // Newest `limit` rows are selected, then put back in time order (see listAudit).
    this.listStmt = db.prepare(`
      SELECT id, time, group_folder, run_id, action, target, reason FROM (
        SELECT * FROM audit
        WHERE (@sinceMs IS NULL OR time_ms >= @sinceMs)
          AND (@group IS NULL OR group_folder = @group)
          AND (@action IS NULL OR action = @action)
        ORDER BY time_ms DESC, id DESC
        LIMIT @limit
      ) ORDER BY time_ms, id`);
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
    this.insertStmt.run({
      time,
      timeMs: parseIsoOrThrow(time, 'audit time'),
      group: record.group,
      runId: record.runId,
      action: record.action,
      target: record.target === null ? null : truncateText(record.target, MAX_TARGET_CHARS),
      reason: record.reason,
    });
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
