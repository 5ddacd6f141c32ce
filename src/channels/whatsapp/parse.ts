// Pure translation of one Baileys `messages.upsert` entry into plain fields:
// which chat, who, when, and the text the agent should see. No I/O, no LID
// lookups (the channel does those), so every message kind is unit-testable.

import type { WAContentLike, WAMessageLike } from './types.js';

export interface ParsedMessage {
  /** As Baileys delivered it; may be a LID (`@lid`). */
  chatJid: string;
  chatJidAlt?: string;
  id: string;
  /** The author as addressed in the key; null when sent from the own account. */
  senderJid: string | null;
  senderJidAlt?: string;
  fromMe: boolean;
  isGroup: boolean;
  /** Null for events that carry no text (reactions, edits, deletes, unknown kinds). */
  text: string | null;
  timestampSeconds: number | null;
  pushName: string | null;
  /** Set when the message quotes another. */
  quoted?: ParsedQuote;
}

export interface ParsedQuote {
  id: string;
  /** The quoted message's author as addressed (may be a LID); absent when WhatsApp did not say. */
  senderJid?: string;
  /** The quoted message's text as the agent would see it; null when it carried none. */
  text: string | null;
}

/** Wrappers whose `message` holds the real content. */
const WRAPPERS = [
  'ephemeralMessage',
  'viewOnceMessage',
  'viewOnceMessageV2',
  'viewOnceMessageV2Extension',
  'documentWithCaptionMessage',
] as const;

/** Kinds that change or annotate another message rather than say something. */
const METADATA_ONLY = [
  'protocolMessage',
  'reactionMessage',
  'encReactionMessage',
  'pollUpdateMessage',
  'editedMessage',
] as const;

const MAX_WRAPPER_DEPTH = 5;

function nonEmpty(value: string | null | undefined): string | null {
  return value && value.trim() !== '' ? value : null;
}

function labelled(label: string, detail: string | null | undefined): string {
  const d = nonEmpty(detail);
  return d ? `[${label}] ${d}` : `[${label}]`;
}

export function unwrapContent(content: WAContentLike | null | undefined): WAContentLike | null {
  let current = content ?? null;
  for (let depth = 0; current && depth < MAX_WRAPPER_DEPTH; depth++) {
    const wrapper = WRAPPERS.find((key) => current?.[key]?.message);
    if (!wrapper) break;
    current = current[wrapper]?.message ?? null;
  }
  return current;
}

/** The text the agent sees for a message: its words, a caption, or a `[kind]` placeholder. */
export function extractText(content: WAContentLike | null | undefined): string | null {
  const m = unwrapContent(content);
  if (!m) return null;
  if (METADATA_ONLY.some((key) => m[key])) return null;

  const text = nonEmpty(m.conversation) ?? nonEmpty(m.extendedTextMessage?.text);
  if (text) return text;

  if (m.imageMessage) return nonEmpty(m.imageMessage.caption) ?? '[image]';
  if (m.videoMessage) return nonEmpty(m.videoMessage.caption) ?? '[video]';
  if (m.ptvMessage) return nonEmpty(m.ptvMessage.caption) ?? '[video]';
  if (m.documentMessage) {
    const doc = m.documentMessage;
    return nonEmpty(doc.caption) ?? labelled('document', doc.fileName ?? doc.title);
  }
  if (m.audioMessage) return m.audioMessage.ptt ? '[voice message]' : '[audio]';
  if (m.stickerMessage) return '[sticker]';
  if (m.locationMessage) return labelled('location', m.locationMessage.name ?? m.locationMessage.address);
  if (m.liveLocationMessage) return '[live location]';
  if (m.contactMessage) return labelled('contact', m.contactMessage.displayName);
  if (m.contactsArrayMessage) return labelled('contacts', m.contactsArrayMessage.displayName);
  const poll = m.pollCreationMessage ?? m.pollCreationMessageV2 ?? m.pollCreationMessageV3;
  if (poll) return labelled('poll', poll.name);
  if (m.eventMessage) return labelled('event', m.eventMessage.name);

  return (
    nonEmpty(m.buttonsResponseMessage?.selectedDisplayText) ??
    nonEmpty(m.templateButtonReplyMessage?.selectedDisplayText) ??
    nonEmpty(m.listResponseMessage?.title)
  );
}

/** Content kinds that can quote another message (they carry a `contextInfo`). */
const QUOTING_KINDS = [
  'extendedTextMessage',
  'imageMessage',
  'videoMessage',
  'ptvMessage',
  'documentMessage',
  'audioMessage',
  'stickerMessage',
] as const;

/** The message this one replies to, from Baileys' `contextInfo` (stanzaId, participant, quotedMessage). */
export function extractQuote(content: WAContentLike | null | undefined): ParsedQuote | null {
  const m = unwrapContent(content);
  if (!m) return null;
  for (const kind of QUOTING_KINDS) {
    const info = m[kind]?.contextInfo;
    const id = nonEmpty(info?.stanzaId);
    if (!info || !id) continue;
    const senderJid = nonEmpty(info.participant);
    return { id, ...(senderJid ? { senderJid } : {}), text: extractText(info.quotedMessage) };
  }
  return null;
}

function toSeconds(value: WAMessageLike['messageTimestamp']): number | null {
  if (value === null || value === undefined) return null;
  const seconds = typeof value === 'number' ? value : value.toNumber();
  return Number.isFinite(seconds) && seconds > 0 ? seconds : null;
}

/** Chats this channel never reports: status updates, broadcast lists, channels. */
export function isIgnoredChat(jid: string): boolean {
  return jid === 'status@broadcast' || jid.endsWith('@broadcast') || jid.endsWith('@newsletter');
}

/** Null for entries that are not chat messages at all (status updates, keyless stubs). */
export function parseUpsertMessage(msg: WAMessageLike): ParsedMessage | null {
  const chatJid = msg.key.remoteJid;
  const id = msg.key.id;
  if (!chatJid || !id || isIgnoredChat(chatJid)) return null;

  const fromMe = msg.key.fromMe === true;
  const isGroup = chatJid.endsWith('@g.us');
  const participant = msg.key.participant ?? msg.participant ?? null;
  const senderJid = fromMe ? null : isGroup ? participant : chatJid;
  const senderJidAlt = isGroup ? msg.key.participantAlt : msg.key.remoteJidAlt;
  const quoted = extractQuote(msg.message);

  return {
    chatJid,
    ...(msg.key.remoteJidAlt ? { chatJidAlt: msg.key.remoteJidAlt } : {}),
    id,
    senderJid,
    ...(senderJid && senderJidAlt ? { senderJidAlt } : {}),
    fromMe,
    isGroup,
    text: extractText(msg.message),
    timestampSeconds: toSeconds(msg.messageTimestamp),
    pushName: nonEmpty(msg.pushName),
    ...(quoted ? { quoted } : {}),
  };
}
