// Linking this host as a WhatsApp device (`nanoclaw auth whatsapp`) and reading
// which account is linked. Kept free of Baileys' runtime so `readLinkedAccount`
// is cheap for the CLI; the socket comes from the injected factory.

import { readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Backoff } from './backoff.js';
import {
  classifyDisconnect,
  describeDisconnect,
  formatDelay,
  isUnreachable,
  retrySentence,
} from './disconnect.js';
import { normalizeJid } from './lid.js';
import {
  DisconnectCode,
  type ClearTimer,
  type SetTimer,
  type SocketFactory,
  type WASocketLike,
} from './types.js';

export interface LinkedAccount {
  /** `<number>@s.whatsapp.net` (device suffix dropped). */
  jid: string;
  /** `<id>@lid`, when WhatsApp told us. */
  lid?: string;
}

/**
 * The account linked in `authDir`, or null when there is none. A creds file
 * that only holds a requested-but-unconfirmed pairing (`me` without `account`)
 * is not a link.
 */
export function readLinkedAccount(authDir: string): LinkedAccount | null {
  let raw: string;
  try {
    raw = readFileSync(join(authDir, 'creds.json'), 'utf8');
  } catch {
    return null;
  }
  let creds: unknown;
  try {
    creds = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof creds !== 'object' || creds === null) return null;
  const { me, account } = creds as { me?: { id?: unknown; lid?: unknown }; account?: unknown };
  if (!account || typeof me?.id !== 'string' || !me.id.includes('@')) return null;
  const jid = normalizeJid(me.id);
  const lid = typeof me.lid === 'string' && me.lid.includes('@') ? normalizeJid(me.lid) : undefined;
  return lid ? { jid, lid } : { jid };
}

type QrRenderer = (qr: string) => Promise<string>;

interface QrTerminal {
  generate(text: string, options: { small: boolean }, callback: (output: string) => void): void;
}

/** qrcode-terminal is CommonJS without types; this is its whole surface we use. */
export function renderQrForTerminal(qr: string): Promise<string> {
  const qrcode = createRequire(import.meta.url)('qrcode-terminal') as QrTerminal;
  return new Promise((resolve) => qrcode.generate(qr, { small: true }, resolve));
}

export interface PairOptions {
  authDir: string;
  /** International format, digits only after cleaning (`+44 7700 900123` is fine). Omit for a QR code. */
  phoneNumber?: string;
  socketFactory: SocketFactory;
  print: (text: string) => void;
  timeoutMs: number;
  /** How long the linked socket stays up after opening so WhatsApp can finish its first sync. */
  settleMs?: number;
  /** First pause before reopening after an unexpected close (not the 515 restart); it doubles per failure. */
  retryDelayMs?: number;
  /** Ceiling of that pause. */
  maxRetryDelayMs?: number;
  /** Uniform in [0, 1), for retry jitter. */
  random?: () => number;
  renderQr?: QrRenderer;
  setTimer?: SetTimer;
  clearTimer?: ClearTimer;
}

const DEFAULT_SETTLE_MS = 3000;
const DEFAULT_RETRY_DELAY_MS = 2000;
/** Linking times out after minutes; waiting longer than this between attempts would waste it. */
const DEFAULT_MAX_RETRY_DELAY_MS = 60_000;
/** E.164 allows at most 15 digits; the shortest real numbers have about 8. */
const PHONE_DIGITS = /^\d{7,15}$/;

function formatPairingCode(code: string): string {
  return code.length === 8 ? `${code.slice(0, 4)}-${code.slice(4)}` : code;
}

/** Removes the files of a revoked link so pairing can start from fresh keys. */
async function clearAuthDir(authDir: string): Promise<void> {
  const names = await readdir(authDir).catch(() => [] as string[]);
  await Promise.all(
    names.filter((n) => n.endsWith('.json')).map((n) => rm(join(authDir, n), { force: true })),
  );
}

/**
 * Links this host as a device of the owner's WhatsApp account, by QR code or
 * pairing code, and resolves with the linked account's phone JID. Survives the
 * restart (515) WhatsApp demands right after linking; rejects on timeout.
 */
export function pairWhatsApp(options: PairOptions): Promise<{ jid: string }> {
  const setTimer = options.setTimer ?? ((cb, ms) => setTimeout(cb, ms));
  const clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  const renderQr = options.renderQr ?? renderQrForTerminal;
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  const backoff = new Backoff({
    baseMs: options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
    maxMs: options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
    random: options.random ?? Math.random,
  });
  const digits = options.phoneNumber?.replace(/\D/g, '');

  if (digits !== undefined && !PHONE_DIGITS.test(digits)) {
    return Promise.reject(
      new Error(
        `Invalid phone number "${options.phoneNumber}": use the international format with country code, e.g. +447700900123.`,
      ),
    );
  }

  return new Promise((resolve, reject) => {
    let socket: WASocketLike | null = null;
    let detach: (() => void) | null = null;
    let settled = false;
    let clearedRevokedLink = false;
    /** What the owner has been shown; the timeout message must not blame a QR that never appeared. */
    let shown: 'nothing' | 'qr' | 'code' = 'nothing';
    /** Why WhatsApp could not be reached, while it could not. */
    let unreachable: string | null = null;

    const release = (): void => {
      detach?.();
      detach = null;
      const s = socket;
      socket = null;
      if (s) void Promise.resolve(s.end(undefined)).catch(() => undefined);
    };

    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimer(timeout);
      release();
      reject(err);
    };

    const timeout = setTimer(() => {
      const after = `WhatsApp linking timed out after ${Math.round(options.timeoutMs / 1000)} s`;
      const again = 'Run `nanoclaw auth whatsapp` again.';
      if (shown === 'qr') fail(new Error(`${after}: the QR code was not scanned. ${again}`));
      else if (shown === 'code') fail(new Error(`${after}: the pairing code was not entered. ${again}`));
      else if (unreachable) {
        fail(
          new Error(
            `${after}: ${unreachable}. Check the network connection and DNS ` +
              '(can this machine resolve web.whatsapp.com?), then run `nanoclaw auth whatsapp` again.',
          ),
        );
      } else {
        const what = digits ? 'no pairing code' : 'no QR code';
        fail(new Error(`${after}: WhatsApp sent ${what}. ${again}`));
      }
    }, options.timeoutMs);

    const start = async (): Promise<void> => {
      const current = await options.socketFactory(options.authDir);
      if (settled) {
        await Promise.resolve(current.end(undefined)).catch(() => undefined);
        return;
      }
      socket = current;
      let codeRequested = false;

      const onUpdate = (update: {
        connection?: string;
        qr?: string;
        lastDisconnect?: { error: Error | undefined };
      }): void => {
        if (settled || socket !== current) return;
        if (update.qr) {
          // WhatsApp answered: the network is fine, and later trouble starts a fresh backoff.
          unreachable = null;
          backoff.reset();
          if (digits) {
            // The first QR means the socket is ready to register; ask for a code instead.
            if (!codeRequested && !current.authState.creds.registered) {
              codeRequested = true;
              current.requestPairingCode(digits).then(
                (code) => {
                  shown = 'code';
                  options.print(
                    `Your WhatsApp pairing code: ${formatPairingCode(code)}\n` +
                      'On your phone: WhatsApp → Settings → Linked devices → Link a device → ' +
                      '"Link with phone number instead", then enter the code.',
                  );
                },
                (err: unknown) =>
                  fail(new Error(`Requesting a WhatsApp pairing code failed: ${String(err)}`)),
              );
            }
          } else {
            shown = 'qr';
            void renderQr(update.qr).then((rendered) => {
              if (settled) return;
              options.print(
                'Scan this QR code with WhatsApp on your phone ' +
                  `(Settings → Linked devices → Link a device):\n${rendered}`,
              );
            });
          }
          return;
        }
        if (update.connection === 'open') {
          const id = current.user?.id ?? readLinkedAccount(options.authDir)?.jid;
          if (!id) {
            fail(new Error('WhatsApp opened the connection but reported no account id.'));
            return;
          }
          settled = true;
          clearTimer(timeout);
          const jid = normalizeJid(id);
          // Keep the socket briefly so the first sync and creds writes complete.
          setTimer(() => {
            release();
            resolve({ jid });
          }, settleMs);
          return;
        }
        if (update.connection !== 'close') return;
        const why = classifyDisconnect(update.lastDisconnect?.error);
        const code = why.statusCode;
        release();
        if (code === DisconnectCode.loggedOut) {
          if (clearedRevokedLink) {
            fail(new Error('WhatsApp refused the link (logged out). Run `nanoclaw auth whatsapp` again.'));
            return;
          }
          // Stored credentials of a revoked device: start over with fresh keys.
          clearedRevokedLink = true;
          options.print('The previous WhatsApp link was revoked; starting a fresh one.');
          void clearAuthDir(options.authDir).then(restart);
          return;
        }
        if (code === DisconnectCode.restartRequired) {
          restart();
          return;
        }
        // Repeated failures (no network, 408s) wait longer each time instead of hammering WhatsApp.
        const delayMs = backoff.nextDelayMs();
        if (why.kind === 'timed_out' && shown === 'qr' && !unreachable) {
          options.print(
            `The QR code expired before it was scanned; asking WhatsApp for a new one in ${formatDelay(delayMs)}.`,
          );
        } else {
          options.print(`${retrySentence(why, delayMs)}.`);
        }
        // A 408 after a QR is the QR expiring; before anything was shown it is WhatsApp out of reach.
        if (isUnreachable(why) && (why.kind !== 'timed_out' || shown === 'nothing')) {
          unreachable = describeDisconnect(why);
        }
        setTimer(restart, delayMs);
      };

      current.ev.on('connection.update', onUpdate);
      detach = () => current.ev.off('connection.update', onUpdate);
    };

    const restart = (): void => {
      if (settled) return;
      start().catch((err: unknown) =>
        fail(err instanceof Error ? err : new Error(`Opening WhatsApp failed: ${String(err)}`)),
      );
    };

    restart();
  });
}
