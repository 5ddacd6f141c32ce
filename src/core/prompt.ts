// Turns stored messages into the agent's prompt (SPEC §2.7). Senders and bodies
// are untrusted chat text, so both are escaped: nobody can forge a `<message>`.

import type { StoredMessage } from './types.js';

const XML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
};

export function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (ch) => XML_ENTITIES[ch] ?? ch);
}

/** Messages are rendered in the order given; callers pass them oldest first (by seq). */
export function formatPrompt(
  messages: readonly Pick<StoredMessage, 'senderName' | 'text' | 'timestamp'>[],
  omitted = 0,
): string {
  const lines = messages.map(
    (m) =>
      `<message sender="${escapeXml(m.senderName)}" time="${escapeXml(m.timestamp)}">${escapeXml(m.text)}</message>`,
  );
  const note =
    omitted > 0
      ? [`<omitted count="${omitted}">older messages left out to keep the prompt small</omitted>`]
      : [];
  return ['<messages>', ...note, ...lines, '</messages>'].join('\n');
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
export function boundedPrompt(messages: readonly StoredMessage[], budget: PromptBudget): BoundedPrompt {
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
  let prompt = formatPrompt(shown);
  while (encodedBytes(prompt) > budget.maxPromptBytes && start < shown.length - 1) {
    start++;
    prompt = formatPrompt(shown.slice(start), start);
  }
  const firstSeq = shown[start]?.seq ?? 0;
  return { prompt, cut: cut.filter((m) => m.seq >= firstSeq), omitted: start };
}
