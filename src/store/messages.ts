// Chats and messages (SPEC §2): the hot ingest path. Every inbound event is one
// short transaction (chat upsert + message insert) on statements prepared once.

import type Database from 'better-sqlite3';
import { quoteExcerpt } from '../core/prompt.js';
import type { Attachment, ChatInfo, InboundMessage, ReplyContext, StoredMessage } from '../core/types.js';
import { flag, isoToMs } from './rows.js';

/** Channel recorded for a chat first seen through insertMessage, which carries no channel. */
export const UNKNOWN_CHANNEL = 'unknown';

interface ChatRow {
  jid: string;
  name: string | null;
  channel: string;
  last_activity: string;
}

interface MessageRow {
  seq: number;
  chat_jid: string;
  id: string;
  sender: string;
  sender_name: string;
  text: string;
  timestamp: string;
  from_me: number;
  is_bot_message: number;
  from_owner: number;
  reply_to_id: string | null;
  reply_to_sender: string | null;
  reply_to_excerpt: string | null;
  media: string | null;
}

interface ChatParams {
  jid: string;
  name: string | null;
  channel: string;
  lastActivity: string;
  lastActivityMs: number;
}

/**
 * chat_jid, id, sender, sender_name, text, timestamp, ts_ms, from_me, is_bot_message, from_owner,
 * reply_to_id, reply_to_sender, reply_to_excerpt, media
 */
type MessageParams = [
  string,
  string,
  string,
  string,
  string,
  string,
  number,
  0 | 1,
  0 | 1,
  0 | 1,
  string | null,
  string | null,
  string | null,
  string | null,
];
/** jid, name, last_activity, last_activity_ms (positional: this runs once per ingested message) */
type TouchChatParams = [string, string | null, string, number];

/** Same notion of "empty" as String.prototype.trim(), without allocating. */
const HAS_VISIBLE_TEXT = /\S/;

// Shared by both chat upserts: a missing name keeps the known one, and an event
// that arrives late (older timestamp) never moves last activity backwards.
const CHAT_UPSERT_COMMON = `
  name = COALESCE(excluded.name, chats.name),
  last_activity = CASE WHEN excluded.last_activity_ms > chats.last_activity_ms
                       THEN excluded.last_activity ELSE chats.last_activity END,
  last_activity_ms = MAX(excluded.last_activity_ms, chats.last_activity_ms)`;

function toStoredMessage(row: MessageRow): StoredMessage {
  return {
    seq: row.seq,
    chatJid: row.chat_jid,
    id: row.id,
    sender: row.sender,
    senderName: row.sender_name,
    text: row.text,
    timestamp: row.timestamp,
    fromMe: row.from_me === 1,
    isBotMessage: row.is_bot_message === 1,
    fromOwner: row.from_owner === 1,
    replyTo:
      row.reply_to_id === null
        ? null
        : { id: row.reply_to_id, senderName: row.reply_to_sender, excerpt: row.reply_to_excerpt },
    ...(row.media === null ? {} : { media: JSON.parse(row.media) as Attachment[] }),
  };
}

export class MessageTables {
  private readonly upsertChatStmt: Database.Statement<[ChatParams]>;
  /** Like upsertChatStmt but keeps the stored channel: messages do not carry one. */
  private readonly touchChatStmt: Database.Statement<TouchChatParams>;
  private readonly listChatsStmt: Database.Statement<[], ChatRow>;
  private readonly insertMessageStmt: Database.Statement<MessageParams>;
  private readonly messagesSinceStmt: Database.Statement<[string, number, number], MessageRow>;
  private readonly latestSeqStmt: Database.Statement<[string], { seq: number | null }>;
  private readonly pruneStmt: Database.Statement<[number]>;
  private readonly quotedStmt: Database.Statement<[string, string], { sender_name: string; text: string }>;
  private readonly insertTx: Database.Transaction<(message: InboundMessage) => StoredMessage | null>;

  constructor(db: Database.Database) {
    this.upsertChatStmt = db.prepare(`
      INSERT INTO chats (jid, name, channel, last_activity, last_activity_ms)
      VALUES (@jid, @name, @channel, @lastActivity, @lastActivityMs)
      ON CONFLICT (jid) DO UPDATE SET channel = excluded.channel, ${CHAT_UPSERT_COMMON}`);
    this.touchChatStmt = db.prepare(`
      INSERT INTO chats (jid, name, channel, last_activity, last_activity_ms)
      VALUES (?, ?, '${UNKNOWN_CHANNEL}', ?, ?)
      ON CONFLICT (jid) DO UPDATE SET ${CHAT_UPSERT_COMMON}`);
    this.listChatsStmt = db.prepare(
      'SELECT jid, name, channel, last_activity FROM chats ORDER BY last_activity_ms DESC, jid',
    );
    // ON CONFLICT names the (chat_jid, id) key so only redelivery is ignored; any
    // other constraint violation still throws.
    this.insertMessageStmt = db.prepare(`
      INSERT INTO messages (chat_jid, id, sender, sender_name, text, timestamp, ts_ms, from_me, is_bot_message,
                            from_owner, reply_to_id, reply_to_sender, reply_to_excerpt, media)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (chat_jid, id) DO NOTHING`);
    this.messagesSinceStmt = db.prepare(`
      SELECT seq, chat_jid, id, sender, sender_name, text, timestamp, from_me, is_bot_message, from_owner,
             reply_to_id, reply_to_sender, reply_to_excerpt, media
      FROM messages
      WHERE chat_jid = ? AND is_bot_message = 0 AND seq > ?
      ORDER BY seq
      LIMIT ?`);
    this.latestSeqStmt = db.prepare(
      'SELECT MAX(seq) AS seq FROM messages WHERE chat_jid = ? AND is_bot_message = 0',
    );
    this.pruneStmt = db.prepare('DELETE FROM messages WHERE ts_ms < ?');
    // Served by UNIQUE (chat_jid, id).
    this.quotedStmt = db.prepare('SELECT sender_name, text FROM messages WHERE chat_jid = ? AND id = ?');
    this.insertTx = db.transaction((message: InboundMessage) => this.insertUnlocked(message));
  }

  upsertChat(chat: { jid: string; name?: string | null; channel: string; timestamp: string }): void {
    this.upsertChatStmt.run({
      jid: chat.jid,
      name: chat.name ?? null,
      channel: chat.channel,
      lastActivity: chat.timestamp,
      lastActivityMs: isoToMs(chat.timestamp, Date.now()),
    });
  }

  listChats(): ChatInfo[] {
    return this.listChatsStmt.all().map((row) => ({
      jid: row.jid,
      name: row.name,
      channel: row.channel,
      lastActivity: row.last_activity,
    }));
  }

  insertMessage(message: InboundMessage): StoredMessage | null {
    return this.insertTx.immediate(message);
  }

  private insertUnlocked(message: InboundMessage): StoredMessage | null {
    const tsMs = isoToMs(message.timestamp, Date.now());
    this.touchChatStmt.run(message.chatJid, message.chatName ?? null, message.timestamp, tsMs);
    const text = message.text;
    if (text === null || !HAS_VISIBLE_TEXT.test(text)) return null;
    const replyTo = message.replyTo ? this.replyContext(message.chatJid, message.replyTo) : null;
    const media = message.media && message.media.length > 0 ? message.media : null;
    const result = this.insertMessageStmt.run(
      message.chatJid,
      message.id,
      message.sender,
      message.senderName,
      text,
      message.timestamp,
      tsMs,
      flag(message.fromMe),
      flag(message.isBotMessage),
      flag(message.fromOwner ?? false),
      replyTo?.id ?? null,
      replyTo?.senderName ?? null,
      replyTo?.excerpt ?? null,
      media === null ? null : JSON.stringify(media),
    );
    if (result.changes === 0) return null;
    return {
      seq: Number(result.lastInsertRowid),
      chatJid: message.chatJid,
      id: message.id,
      sender: message.sender,
      senderName: message.senderName,
      text,
      timestamp: message.timestamp,
      fromMe: message.fromMe,
      isBotMessage: message.isBotMessage,
      fromOwner: message.fromOwner ?? false,
      replyTo,
      ...(media === null ? {} : { media }),
    };
  }

  /**
   * What a reply quotes: the stored message with that id in the same chat wins
   * (its sender name is the one the prompt already shows); otherwise what the
   * channel sent along. Only an excerpt is kept.
   */
  private replyContext(chatJid: string, reply: NonNullable<InboundMessage['replyTo']>): ReplyContext {
    const quoted = this.quotedStmt.get(chatJid, reply.id);
    const senderName = quoted?.sender_name ?? reply.senderName ?? null;
    const text = quoted?.text ?? reply.text ?? null;
    return { id: reply.id, senderName, excerpt: text === null ? null : quoteExcerpt(text) };
  }

  /** `limit` omitted means all (SQLite's LIMIT -1). */
  messagesSince(chatJid: string, afterSeq: number, limit?: number): StoredMessage[] {
    return this.messagesSinceStmt.all(chatJid, afterSeq, limit ?? -1).map(toStoredMessage);
  }

  latestSeq(chatJid: string): number {
    return this.latestSeqStmt.get(chatJid)?.seq ?? 0;
  }

  pruneMessages(olderThanMs: number): number {
    return this.pruneStmt.run(olderThanMs).changes;
  }
}
