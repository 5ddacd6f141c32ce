// Outbound text rules (SPEC §3.1–3.3): hide the agent's internal notes, name the
// assistant where the channel does not, and fit the channel's message limit.

/** An unclosed `<internal>` hides the rest: leaking half a private note is worse than dropping it. */
export function stripInternal(text: string): string {
  return text
    .replace(/<internal>[\s\S]*?<\/internal>/gi, '')
    .replace(/<internal>[\s\S]*$/i, '')
    .trim();
}

interface Cut {
  /** End (exclusive) of the chunk being emitted. */
  end: number;
  /** Where the remaining text resumes, past the separator. */
  resume: number;
}

function skipWhile(text: string, from: number, pattern: RegExp): number {
  let i = from;
  while (i < text.length && pattern.test(text[i])) i++;
  return i;
}

/** Finds the best split within the first `maxLength` characters: paragraph, then line, then word, then hard. */
function findCut(text: string, maxLength: number): Cut {
  // A separator that starts exactly at maxLength still leaves a chunk of maxLength characters.
  const paragraph = text.lastIndexOf('\n\n', maxLength);
  if (paragraph > 0) return { end: paragraph, resume: skipWhile(text, paragraph, /[\r\n]/) };

  const line = text.lastIndexOf('\n', maxLength);
  if (line > 0) return { end: line, resume: line + 1 };

  for (let i = Math.min(maxLength, text.length - 1); i > 0; i--) {
    if (/\s/.test(text[i])) return { end: i, resume: skipWhile(text, i, /[ \t\f\v\u00a0]/) };
  }

  // Never cut a surrogate pair in half: a lone surrogate renders as garbage.
  const high = text.charCodeAt(maxLength - 1);
  const end = maxLength > 1 && high >= 0xd800 && high <= 0xdbff ? maxLength - 1 : maxLength;
  return { end, resume: end };
}

/**
 * Splits text into chunks of at most `maxLength` characters, preferring paragraph,
 * then line, then word boundaries; words longer than the limit are hard-split.
 * Whitespace at split points is dropped; no chunk is empty.
 */
export function splitMessage(text: string, maxLength: number): string[] {
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
  }
  const chunks: string[] = [];
  let rest = text;
  while (rest.length > maxLength) {
    const cut = findCut(rest, maxLength);
    const head = rest.slice(0, cut.end).trimEnd();
    if (head.trim().length > 0) chunks.push(head);
    rest = rest.slice(cut.resume);
  }
  const tail = rest.trimEnd();
  if (tail.trim().length > 0) chunks.push(tail);
  return chunks;
}

export interface OutboundOptions {
  assistantName: string;
  /** False for channels where replies appear under the owner's name (WhatsApp). */
  showsBotName: boolean;
  maxLength: number;
}

/**
 * The chunks to send for one agent output. Every chunk carries the name prefix
 * when the channel needs it: each WhatsApp message must be recognisable as the
 * assistant's on its own, and the channel detects its own replies by it.
 */
export function formatOutbound(text: string, opts: OutboundOptions): string[] {
  const visible = stripInternal(text);
  if (visible.length === 0) return [];
  const prefix = opts.showsBotName ? '' : `${opts.assistantName}: `;
  const room = opts.maxLength - prefix.length;
  if (room < 1) {
    throw new RangeError(`maxLength ${opts.maxLength} leaves no room after the prefix "${prefix}"`);
  }
  return splitMessage(visible, room).map((chunk) => prefix + chunk);
}
