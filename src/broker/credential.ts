// Credential handling helpers for the model proxy: the real credential must never
// leak back into a sandbox or a log (SPEC §10.1), and the per-run placeholder is
// compared in constant time so a sandbox cannot probe it byte by byte.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { createSecretScrubber } from './scrub.js';

export { REDACTED } from './scrub.js';

/** One-off scrub of `text` (every encoding and long fragment of each secret; see scrub.ts). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  return createSecretScrubber(secrets).scrubText(text);
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
