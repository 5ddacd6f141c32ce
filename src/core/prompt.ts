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
): string {
  const lines = messages.map(
    (m) =>
      `<message sender="${escapeXml(m.senderName)}" time="${escapeXml(m.timestamp)}">${escapeXml(m.text)}</message>`,
  );
  return ['<messages>', ...lines, '</messages>'].join('\n');
}
