// One row per agent run (SPEC §6.6, `nanoclaw runs`): when it started and ended,
// for which group and task, and how it ended. Tokens are not copied here; they
// are summed from the usage table by run id when listed, so the broker's per-
// request rows stay the only record of them.

import type Database from 'better-sqlite3';
import type { RunEnd, RunRecord, RunStart } from './api.js';
import { StoreInputError } from './errors.js';

/** Error text kept per run; the log has the rest. */
export const RUN_ERROR_MAX_CHARS = 1000;

interface RunRow {
  run_id: string;
  group_folder: string;
  task_id: string | null;
  started_at_ms: number;
  ended_at_ms: number | null;
  outcome: RunRecord['outcome'];
  error: string | null;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
}

function truncate(text: string | null, maxChars: number): string | null {
  if (text === null || text.length <= maxChars) return text;
  return `${text.slice(0, maxChars - 1)}…`;
}

function toRecord(row: RunRow): RunRecord {
  return {
    runId: row.run_id,
    groupFolder: row.group_folder,
    taskId: row.task_id,
    startedAtMs: row.started_at_ms,
    endedAtMs: row.ended_at_ms,
    outcome: row.outcome,
    error: row.error,
    tokens: {
      inputTokens: row.input_tokens,
      outputTokens: row.output_tokens,
      cacheReadTokens: row.cache_read_tokens,
      cacheWriteTokens: row.cache_write_tokens,
    },
  };
}

export class RunsTable {
  private readonly startStmt: Database.Statement<[RunStart & { taskId: string | null }]>;
  private readonly endStmt: Database.Statement<
    [{ runId: string; endedAtMs: number; outcome: string; error: string | null }]
  >;
  private readonly interruptStmt: Database.Statement<[number]>;
  private readonly listStmt: Database.Statement<[{ group: string | null; limit: number }], RunRow>;

  constructor(db: Database.Database) {
    // A repeated start (same id) keeps the first row: the id is random per run.
    this.startStmt = db.prepare(`
      INSERT INTO runs (run_id, group_folder, task_id, started_at_ms)
      VALUES (@runId, @groupFolder, @taskId, @startedAtMs)
      ON CONFLICT (run_id) DO NOTHING`);
    // Only an open run ends: a late second end never rewrites the outcome.
    this.endStmt = db.prepare(`
      UPDATE runs SET ended_at_ms = @endedAtMs, outcome = @outcome, error = @error
      WHERE run_id = @runId AND outcome IS NULL`);
    this.interruptStmt = db.prepare(`
      UPDATE runs SET ended_at_ms = ?, outcome = 'interrupted', error = 'the host stopped during the run'
      WHERE outcome IS NULL`);
    // Newest first. The page of runs is cut first, then each run's usage rows are
    // summed through the usage_run index (never a scan of all usage).
    this.listStmt = db.prepare(`
      SELECT r.run_id, r.group_folder, r.task_id, r.started_at_ms, r.ended_at_ms, r.outcome, r.error,
        COALESCE(SUM(u.input_tokens), 0) AS input_tokens,
        COALESCE(SUM(u.output_tokens), 0) AS output_tokens,
        COALESCE(SUM(u.cache_read_tokens), 0) AS cache_read_tokens,
        COALESCE(SUM(u.cache_write_tokens), 0) AS cache_write_tokens
      FROM (
        SELECT rowid AS row_order, * FROM runs
        WHERE @group IS NULL OR group_folder = @group
        ORDER BY started_at_ms DESC, rowid DESC
        LIMIT @limit
      ) AS r
      LEFT JOIN usage AS u ON u.run_id = r.run_id
      GROUP BY r.run_id
      ORDER BY r.started_at_ms DESC, r.row_order DESC`);
  }

  runStarted(start: RunStart): void {
    this.startStmt.run({
      runId: start.runId,
      groupFolder: start.groupFolder,
      taskId: start.taskId ?? null,
      startedAtMs: Math.round(start.startedAtMs),
    });
  }

  /** Returns false when no open run has that id (unknown, or already ended). */
  runEnded(end: RunEnd): boolean {
    return (
      this.endStmt.run({
        runId: end.runId,
        endedAtMs: Math.round(end.endedAtMs),
        outcome: end.outcome,
        error: truncate(end.error ?? null, RUN_ERROR_MAX_CHARS),
      }).changes > 0
    );
  }

  interruptOpenRuns(nowMs: number): number {
    return this.interruptStmt.run(Math.round(nowMs)).changes;
  }

  listRuns(filter: { group?: string; limit?: number } = {}): RunRecord[] {
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new StoreInputError(`runs limit must be a whole number >= 1, got ${limit}`);
    }
    return this.listStmt.all({ group: filter.group ?? null, limit }).map(toRecord);
  }
}
