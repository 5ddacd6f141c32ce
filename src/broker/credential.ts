// Credential handling helpers for the model proxy: the real credential must never
// leak back into a sandbox or a log (SPEC §10.1), and the per-run placeholder is
// compared in constant time so a sandbox cannot probe it byte by byte.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const REDACTED = '[redacted]';

/**
 * Removes every occurrence of each secret from `text`, including the URL-encoded
 * form (error messages from URL parsers and HTTP clients sometimes encode).
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    // Very short values would scrub innocent text and cannot be real credentials.
    if (secret.length < 4) continue;
    const forms = new Set([secret, encodeURIComponent(secret)]);
    for (const form of forms) out = out.split(form).join(REDACTED);
  }
  return out;
}

/** The key a client presented, from `x-api-key` or `authorization: Bearer …`; null when absent. */
export function presentedKey(headers: IncomingHttpHeaders): string | null {
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return null;
}

/** Constant-time equality; hashing first makes the comparison independent of lengths too. */
export function keysEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
