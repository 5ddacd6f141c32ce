// Why a WhatsApp connection closed, in one plain sentence. Baileys reports a
// failed DNS lookup or an unreachable network as a Boom error with status 408
// ("timed out") and the socket error in `data`, so a missing network looks like
// WhatsApp timing out unless the socket error is read; this module reads it.
// Pure: no I/O, no timers.

import { DisconnectCode } from './types.js';

export const WHATSAPP_HOST = 'web.whatsapp.com';

export type DisconnectKind =
  /** The name web.whatsapp.com did not resolve: no network or no DNS. */
  | 'dns'
  /** Resolved, but unreachable, refused, reset or timed out at the socket. */
  | 'network'
  /** WhatsApp's own 408: the connection timed out or was lost. */
  | 'timed_out'
  | 'logged_out'
  | 'restart_required'
  | 'replaced'
  | 'other';

export interface Disconnect {
  kind: DisconnectKind;
  /** Baileys' status code, when there is one. */
  statusCode?: number;
  /** The socket error code (ENOTFOUND, ECONNREFUSED…), when there is one. */
  errno?: string;
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'ESOCKETTIMEDOUT',
]);
const ERRNO_IN_TEXT = /\b(E[A-Z_]{3,})\b/;

function statusCodeOf(error: unknown): number | undefined {
  const output = (error as { output?: { statusCode?: unknown } } | undefined)?.output;
  return typeof output?.statusCode === 'number' ? output.statusCode : undefined;
}

/** The socket error code carried by Baileys' Boom (`data`), a cause, the error itself, or its message. */
function errnoOf(error: unknown): string | undefined {
  const e = error as {
    code?: unknown;
    data?: { code?: unknown };
    cause?: { code?: unknown };
    message?: unknown;
  };
  for (const code of [e?.data?.code, e?.cause?.code, e?.code]) {
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
  }
  const text = typeof e?.message === 'string' ? e.message : '';
  const match = ERRNO_IN_TEXT.exec(text);
  return match && (DNS_CODES.has(match[1]) || NETWORK_CODES.has(match[1])) ? match[1] : undefined;
}

export function classifyDisconnect(error: Error | undefined): Disconnect {
  const statusCode = statusCodeOf(error);
  const errno = errnoOf(error);
  const base = {
    ...(statusCode !== undefined ? { statusCode } : {}),
    ...(errno !== undefined ? { errno } : {}),
  };
  if (errno && DNS_CODES.has(errno)) return { kind: 'dns', ...base };
  if (errno && NETWORK_CODES.has(errno)) return { kind: 'network', ...base };
  switch (statusCode) {
    case DisconnectCode.loggedOut:
      return { kind: 'logged_out', ...base };
    case DisconnectCode.restartRequired:
      return { kind: 'restart_required', ...base };
    case DisconnectCode.connectionReplaced:
      return { kind: 'replaced', ...base };
    case DisconnectCode.timedOut:
      return { kind: 'timed_out', ...base };
    default:
      return { kind: 'other', ...base };
  }
}

/** DNS, network and timeouts: the host cannot get to WhatsApp, so retries must back off. */
export function isUnreachable(d: Disconnect): boolean {
  return d.kind === 'dns' || d.kind === 'network' || d.kind === 'timed_out';
}

/** "4 s", "1 min 30 s", "5 min". */
export function formatDelay(ms: number): string {
  const totalS = Math.max(0, Math.round(ms / 1000));
  if (totalS < 60) return `${totalS} s`;
  const min = Math.floor(totalS / 60);
  const s = totalS % 60;
  return s === 0 ? `${min} min` : `${min} min ${s} s`;
}

/** What went wrong, without any advice about QR codes (none may ever have been shown). */
export function describeDisconnect(d: Disconnect): string {
  const code = d.errno ?? (d.statusCode !== undefined ? String(d.statusCode) : 'no code');
  switch (d.kind) {
    case 'dns':
      return `cannot reach WhatsApp (${WHATSAPP_HOST}): no network or DNS (${code})`;
    case 'network':
      return `cannot reach WhatsApp (${WHATSAPP_HOST}): the network is unreachable or the connection failed (${code})`;
    case 'timed_out':
      return `the connection to WhatsApp timed out (${code})`;
    case 'logged_out':
      return 'WhatsApp logged this device out (401)';
    case 'restart_required':
      return 'WhatsApp asked for a restart (515)';
    case 'replaced':
      return 'another client took over this WhatsApp session (440)';
    case 'other':
      return `WhatsApp closed the connection (${code})`;
  }
}

/** One plain sentence for a close that will be retried. */
export function retrySentence(d: Disconnect, delayMs: number): string {
  return `${describeDisconnect(d)}; retrying in ${formatDelay(delayMs)}`;
}
