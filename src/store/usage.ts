// Token accounting per model request (SPEC §11). Days are UTC so budgets and
// `nanoclaw usage` agree regardless of the host's time zone.

import type Database from 'better-sqlite3';
import type { TokenUsage } from '../core/types.js';
import type { UsageRow } from './api.js';
import { StoreInputError } from './errors.js';

export interface UsageEntry {
  groupFolder: string;
  runId: string;
  taskId: string | null;
  usage: TokenUsage;
  atMs: number;
}

export interface UsageFilter {
  sinceDay?: string;
  group?: string;
}

interface UsageParams {
  day: string;
  groupFolder: string;
  runId: string;
  taskId: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  atMs: number;
}

interface UsageByDayRow {
  day: string;
  group_folder: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  requests: number;
}

interface TokenSumsRow {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
}

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

const TOKEN_SUMS = `COALESCE(SUM(input_tokens), 0) AS input_tokens,
  COALESCE(SUM(output_tokens), 0) AS output_tokens,
  COALESCE(SUM(cache_read_tokens), 0) AS cache_read_tokens,
  COALESCE(SUM(cache_write_tokens), 0) AS cache_write_tokens`;

/** The UTC calendar day (YYYY-MM-DD) of an epoch-ms instant. */
export function utcDay(atMs: number): string {
  return new Date(atMs).toISOString().slice(0, 10);
}

function tokenCount(value: number, field: string): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new StoreInputError(`usage.${field} must be a number >= 0, got ${value}`);
  }
  return Math.round(value);
}

export class UsageTable {
  private readonly insertStmt: Database.Statement<[UsageParams]>;
  private readonly dayTotalStmt: Database.Statement<[string, string], { total: number }>;
  private readonly byDayStmt: Database.Statement<
    [{ sinceDay: string | null; group: string | null }],
    UsageByDayRow
  >;
  private readonly forRunStmt: Database.Statement<[string], TokenSumsRow>;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(`
      INSERT INTO usage (day, group_folder, run_id, task_id, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, at_ms)
      VALUES (@day, @groupFolder, @runId, @taskId, @inputTokens, @outputTokens,
        @cacheReadTokens, @cacheWriteTokens, @atMs)`);
    this.dayTotalStmt = db.prepare(`
      SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) AS total
      FROM usage WHERE group_folder = ? AND day = ?`);
    this.byDayStmt = db.prepare(`
      SELECT day, group_folder, ${TOKEN_SUMS}, COUNT(*) AS requests
      FROM usage
      WHERE (@sinceDay IS NULL OR day >= @sinceDay) AND (@group IS NULL OR group_folder = @group)
      GROUP BY day, group_folder
      ORDER BY day, group_folder`);
    this.forRunStmt = db.prepare(`SELECT ${TOKEN_SUMS} FROM usage WHERE run_id = ?`);
  }

  recordUsage(entry: UsageEntry): void {
    const { usage } = entry;
    this.insertStmt.run({
      day: utcDay(entry.atMs),
      groupFolder: entry.groupFolder,
      runId: entry.runId,
      taskId: entry.taskId,
      inputTokens: tokenCount(usage.inputTokens, 'inputTokens'),
      outputTokens: tokenCount(usage.outputTokens, 'outputTokens'),
      cacheReadTokens: tokenCount(usage.cacheReadTokens, 'cacheReadTokens'),
      cacheWriteTokens: tokenCount(usage.cacheWriteTokens, 'cacheWriteTokens'),
      atMs: Math.round(entry.atMs),
    });
  }

  tokensUsedOnDay(groupFolder: string, atMs: number): number {
    return this.dayTotalStmt.get(groupFolder, utcDay(atMs))?.total ?? 0;
  }

  /** One row per (UTC day, group), oldest day first. */
  usageByDay(filter: UsageFilter = {}): UsageRow[] {
    if (filter.sinceDay !== undefined && !DAY_PATTERN.test(filter.sinceDay)) {
      throw new StoreInputError(`sinceDay '${filter.sinceDay}' is not a day like '2025-01-31'`);
    }
    return this.byDayStmt
      .all({ sinceDay: filter.sinceDay ?? null, group: filter.group ?? null })
      .map((row) => ({
        day: row.day,
        groupFolder: row.group_folder,
        inputTokens: row.input_tokens,
        outputTokens: row.output_tokens,
        cacheReadTokens: row.cache_read_tokens,
        cacheWriteTokens: row.cache_write_tokens,
        requests: row.requests,
      }));
  }

  usageForRun(runId: string): TokenUsage {
    const row = this.forRunStmt.get(runId);
    return {
      inputTokens: row?.input_tokens ?? 0,
      outputTokens: row?.output_tokens ?? 0,
      cacheReadTokens: row?.cache_read_tokens ?? 0,
      cacheWriteTokens: row?.cache_write_tokens ?? 0,
    };
  }
}
