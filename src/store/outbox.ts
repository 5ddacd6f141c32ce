// The durable outbox (SPEC §3.4): every outbound chunk is committed here before
// a channel sees it, and leaves `pending` only when the channel confirms or the
// sender gives up. Retry timing is the caller's policy; this module stores it.

import type Database from 'better-sqlite3';
import type { OutboxItem, OutboxStatus } from '../core/types.js';
import { truncateText } from './rows.js';

interface OutboxRow {
  id: number;
  chat_jid: string;
  text: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  file_path: string | null;
  file_type: string | null;
}

const OUTBOX_COLUMNS =
  'id, chat_jid, text, status, attempts, next_attempt_at, last_error, created_at, file_path, file_type';

function toOutboxItem(row: OutboxRow): OutboxItem {
  return {
    id: row.id,
    chatJid: row.chat_jid,
    text: row.text,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    ...(row.file_path === null ? {} : { file: { path: row.file_path, type: row.file_type ?? '' } }),
  };
}

export class OutboxTable {
  private readonly insertStmt: Database.Statement<[string, string, number, number]>;
  private readonly insertFileStmt: Database.Statement<[string, string, number, number, string, string]>;
  private readonly pendingStmt: Database.Statement<[number, number], OutboxRow>;
  private readonly nextAttemptStmt: Database.Statement<[], { at: number | null }>;
  private readonly getStmt: Database.Statement<[number], OutboxRow>;
  private readonly markSentStmt: Database.Statement<[number]>;
  private readonly markAttemptFailedStmt: Database.Statement<[string, number, number]>;
  private readonly markFailedStmt: Database.Statement<[string, number]>;
  private readonly pruneStmt: Database.Statement<[number]>;
  private readonly enqueueTx: Database.Transaction<
    (chatJid: string, chunks: string[], nowMs: number) => number[]
  >;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(`
      INSERT INTO outbox (chat_jid, text, status, attempts, next_attempt_at, created_at)
      VALUES (?, ?, 'pending', 0, ?, ?)`);
    this.insertFileStmt = db.prepare(`
      INSERT INTO outbox (chat_jid, text, status, attempts, next_attempt_at, created_at, file_path, file_type)
      VALUES (?, ?, 'pending', 0, ?, ?, ?, ?)`);
    this.pendingStmt = db.prepare(`
      SELECT ${OUTBOX_COLUMNS} FROM outbox
      WHERE status = 'pending' AND next_attempt_at <= ?
      ORDER BY id LIMIT ?`);
    this.nextAttemptStmt = db.prepare(
      "SELECT MIN(next_attempt_at) AS at FROM outbox WHERE status = 'pending'",
    );
    this.getStmt = db.prepare(`SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE id = ?`);
    this.markSentStmt = db.prepare(
      "UPDATE outbox SET status = 'sent', attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
    );
    this.markAttemptFailedStmt = db.prepare(`
      UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
      WHERE id = ? AND status = 'pending'`);
    this.markFailedStmt = db.prepare(`
      UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?
      WHERE id = ? AND status = 'pending'`);
    this.pruneStmt = db.prepare("DELETE FROM outbox WHERE status != 'pending' AND created_at < ?");
    this.enqueueTx = db.transaction((chatJid: string, chunks: string[], nowMs: number) =>
      chunks.map((text) => Number(this.insertStmt.run(chatJid, text, nowMs, nowMs).lastInsertRowid)),
    );
  }

  enqueueOutbound(chatJid: string, chunks: string[], nowMs: number): number[] {
    return this.enqueueTx.immediate(chatJid, chunks, Math.round(nowMs));
  }

  /** One file (absolute host path) with its caption; returns its id. */
  enqueueOutboundFile(
    chatJid: string,
    file: { path: string; type: string; caption: string },
    nowMs: number,
  ): number {
    const at = Math.round(nowMs);
    return Number(
      this.insertFileStmt.run(chatJid, file.caption, at, at, file.path, file.type).lastInsertRowid,
    );
  }

  /** `limit` omitted means all due items. */
  pendingOutbound(nowMs: number, limit?: number): OutboxItem[] {
    return this.pendingStmt.all(nowMs, limit ?? -1).map(toOutboxItem);
  }

  nextOutboundAttemptAt(): number | null {
    return this.nextAttemptStmt.get()?.at ?? null;
  }

  getOutbound(id: number): OutboxItem | undefined {
    const row = this.getStmt.get(id);
    return row && toOutboxItem(row);
  }

  // The mark* methods touch only pending items, so a late confirmation cannot
  // resurrect or re-fail an item that already reached a final state.
  markSent(id: number): void {
    this.markSentStmt.run(id);
  }

  /** Counts the attempt, keeps the item pending, and defers it to `nextAttemptAt` (epoch ms). */
  markAttemptFailed(id: number, error: string, nextAttemptAt: number): void {
    this.markAttemptFailedStmt.run(truncateText(error), Math.round(nextAttemptAt), id);
  }

  /** Counts the attempt and gives up on the item. */
  markFailed(id: number, error: string): void {
    this.markFailedStmt.run(truncateText(error), id);
  }

  /** Deletes sent and failed items created before the cutoff; pending ones are never pruned. */
  pruneOutbound(olderThanMs: number): number {
    return this.pruneStmt.run(olderThanMs).changes;
  }
}
