// Turns stored messages into the agent's prompt (SPEC §2.7). Senders and bodies
// are untrusted chat text, so both are escaped: nobody can forge a `<message>`.
// A `<context …/>` line goes first, so the agent knows who and where it is and
// what time it is for the people in the chat; it is part of the size budget.
// Times are formatted by a function passed in (it needs the zone database).

import type { Attachment, ReplyContext, ScheduleType, StoredMessage } from './types.js';

const XML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
};

export function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (ch) => XML_ENTITIES[ch] ?? ch);
}

/** Longest quoted excerpt kept with a reply, in characters (code points). */
export const QUOTE_EXCERPT_CHARS = 200;

/** A quoted text as shown with a reply: whitespace folded, at most QUOTE_EXCERPT_CHARS characters. */
export function quoteExcerpt(text: string): string {
  const folded = text.replace(/\s+/g, ' ').trim();
  const chars = [...folded];
  if (chars.length <= QUOTE_EXCERPT_CHARS) return folded;
  return chars.slice(0, QUOTE_EXCERPT_CHARS - 1).join('') + '…';
}

/** Who the agent is and where: put in the context header of every prompt. */
export interface ChatIdentity {
  assistantName: string;
  chatName: string;
  chatJid: string;
  channel: string;
  chatType: ChatType;
}

export type ChatType = 'group' | 'direct';

/**
 * Whether a chat id is a group or a direct chat, and which channel owns it,
 * from the id alone: WhatsApp groups end in `@g.us`; `local:main` is the
 * owner's own (direct) chat and other local chats stand for groups.
 */
export function describeChat(jid: string): { channel: string; chatType: ChatType } {
  if (jid.startsWith('local:'))
    return { channel: 'local', chatType: jid === 'local:main' ? 'direct' : 'group' };
  if (jid.endsWith('@g.us')) return { channel: 'whatsapp', chatType: 'group' };
  if (jid.endsWith('@s.whatsapp.net') || jid.endsWith('@lid'))
    return { channel: 'whatsapp', chatType: 'direct' };
  return { channel: 'unknown', chatType: 'direct' };
}

/** The `<context …/>` line: identity plus the configured zone and the local time now. */
export function contextHeader(identity: ChatIdentity, time: { timeZone: string; now: string }): string {
  const attrs: Array<[string, string]> = [
    ['assistant', identity.assistantName],
    ['chat', identity.chatName],
    ['chat_id', identity.chatJid],
    ['chat_type', identity.chatType],
    ['channel', identity.channel],
    ['time_zone', time.timeZone],
    ['now', time.now],
  ];
  return `<context ${attrs.map(([k, v]) => `${k}="${escapeXml(v)}"`).join(' ')}/>`;
}

/** How a prompt is presented: its header line and how stored (UTC) times are shown. */
export interface PromptView {
  /** The context header (`contextHeader`), put before the body. */
  header: string;
  /** A stored ISO timestamp as local time with its offset, e.g. `2026-11-30T16:05:00+01:00`. */
  localTime: (iso: string) => string;
}

type PromptMessage = Pick<StoredMessage, 'senderName' | 'text' | 'timestamp'> & {
  replyTo?: ReplyContext | null;
  media?: Attachment[];
};

/** One stored file as the agent sees it: its Read tool opens the path (relative to its working directory). */
function formatAttachment(a: Pick<Attachment, 'path' | 'type'>): string {
  return `<attachment type="${escapeXml(a.type)}" path="${escapeXml(a.path)}"/>`;
}

function formatMessage(m: PromptMessage, localTime: (iso: string) => string): string {
  const reply = m.replyTo;
  const replyAttr = reply ? ` reply_to="${escapeXml(reply.id)}"` : '';
  let quoted = '';
  if (reply && (reply.excerpt !== null || reply.senderName !== null)) {
    const sender = reply.senderName !== null ? ` sender="${escapeXml(reply.senderName)}"` : '';
    quoted = `<quoted${sender}>${escapeXml(reply.excerpt ?? '')}</quoted>`;
  }
  const time = escapeXml(localTime(m.timestamp));
  const files = (m.media ?? []).map((a) => `\n${formatAttachment(a)}`).join('');
  return `<message sender="${escapeXml(m.senderName)}" time="${time}"${replyAttr}>${quoted}${escapeXml(m.text)}${files}</message>`;
}

const AS_STORED = (iso: string): string => iso;

/** Messages are rendered in the order given; callers pass them oldest first (by seq). */
export function formatPrompt(messages: readonly PromptMessage[], omitted = 0, view?: PromptView): string {
  const localTime = view?.localTime ?? AS_STORED;
  const lines = messages.map((m) => formatMessage(m, localTime));
  const note =
    omitted > 0
      ? [`<omitted count="${omitted}">older messages left out to keep the prompt small</omitted>`]
      : [];
  const header = view ? [view.header] : [];
  return [...header, '<messages>', ...note, ...lines, '</messages>'].join('\n');
}

const TASK_NOTE =
  'This is a scheduled task, not a live conversation: no human is waiting for an answer right now. ' +
  'Your final output is sent to this chat as a message (wrap it in <internal>…</internal> to send nothing).';

/** SPEC §6: a task run's prompt says it is one, which task, and where its output goes. */
export function formatTaskPrompt(
  task: { id: string; scheduleType: ScheduleType; scheduleValue: string; prompt: string },
  view?: PromptView,
): string {
  const attrs = `id="${escapeXml(task.id)}" schedule_type="${task.scheduleType}" schedule_value="${escapeXml(task.scheduleValue)}"`;
  const header = view ? [view.header] : [];
  return [
    ...header,
    `<scheduled_task ${attrs}>`,
    TASK_NOTE,
    `<task>${escapeXml(task.prompt)}</task>`,
    '</scheduled_task>',
  ].join('\n');
}

export interface PromptBudget {
  /** Bytes of the whole prompt as it travels (JSON-encoded on the runner's stdin line). */
  maxPromptBytes: number;
  /** Bytes of one message body; longer bodies are cut and marked. */
  maxMessageBytes: number;
  /** The agent-visible path (relative to its working directory) where a cut message's full text is kept. */
  fullTextPath: (message: Pick<StoredMessage, 'seq'>) => string;
}

export interface BoundedPrompt {
  prompt: string;
  /** Messages whose body was cut: their full text must be saved at fullTextPath before the prompt is sent. */
  cut: StoredMessage[];
  /** Older messages left out to fit the budget (they count as seen). */
  omitted: number;
}

/** Size of `text` once JSON-encoded, as the runner protocol carries it. */
export function encodedBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text), 'utf8');
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes, never inside a character. */
function cutToBytes(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Step back over UTF-8 continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/**
 * SPEC §12: no input may make a group unanswerable. The prompt fits the budget
 * whatever the messages are: an oversized body is cut with a marker naming the
 * file holding its full text, and when the messages still do not fit, the
 * oldest are left out first (the newest one always stays: it is what woke us).
 */
export function boundedPrompt(
  messages: readonly StoredMessage[],
  budget: PromptBudget,
  view?: PromptView,
): BoundedPrompt {
  const cut: StoredMessage[] = [];
  const shown = messages.map((m) => {
    if (encodedBytes(m.text) <= budget.maxMessageBytes) return m;
    cut.push(m);
    // JSON escaping may grow a byte up to six: cut the raw text so the encoded size fits.
    let keep = budget.maxMessageBytes;
    let text = cutToBytes(m.text, keep);
    while (encodedBytes(text) > budget.maxMessageBytes && keep > 0) {
      keep = Math.floor(keep / 2);
      text = cutToBytes(m.text, keep);
    }
    const total = Buffer.byteLength(m.text, 'utf8');
    return {
      ...m,
      text: `${text}\n[message cut: ${total} bytes in all; the full text is in the file ${budget.fullTextPath(m)}]`,
    };
  });
  let start = 0;
  let prompt = formatPrompt(shown, 0, view);
  while (encodedBytes(prompt) > budget.maxPromptBytes && start < shown.length - 1) {
    start++;
    prompt = formatPrompt(shown.slice(start), start, view);
  }
  const firstSeq = shown[start]?.seq ?? 0;
  return { prompt, cut: cut.filter((m) => m.seq >= firstSeq), omitted: start };
}
