// The only module that touches Baileys at run time: it loads the auth state
// with owner-only file modes and builds the real socket. Importing it opens no
// connection; calling the factory does.

import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import makeWASocket, {
  Browsers,
  downloadMediaMessage,
  makeCacheableSignalKeyStore,
  useMultiFileAuthState,
  type AuthenticationState,
  type SignalDataSet,
  type WAMessage,
} from '@whiskeysockets/baileys';
import pino from 'pino';
import type { SocketFactory, WAMessageLike, WASocketLike } from './types.js';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export interface AuthHandle {
  state: AuthenticationState;
  /** Writes creds.json and makes it owner-only. */
  saveCreds(): Promise<void>;
  /** Resolves once every save started so far has finished. */
  flush(): Promise<void>;
}

/** Mirrors Baileys' own file naming in useMultiFileAuthState. */
function keyFileName(category: string, id: string): string {
  return `${category}-${id}.json`.replace(/\//g, '__').replace(/:/g, '-');
}

async function chmodIfExists(path: string): Promise<void> {
  try {
    await chmod(path, FILE_MODE);
  } catch (err) {
    // A key that was just deleted has no file; anything else is real.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Baileys writes its files with the default umask (often world-readable); these
 * are the keys to the owner's WhatsApp account, so the directory is 0700 and
 * every file is chmod-ed to 0600 right after it is written.
 */
export async function openAuthState(authDir: string): Promise<AuthHandle> {
  // Only the auth dir itself is 0700: the data home above it must stay passable for the sandbox user.
  await mkdir(dirname(authDir), { recursive: true });
  await mkdir(authDir, { recursive: true, mode: DIR_MODE });
  await chmod(authDir, DIR_MODE);
  const { state, saveCreds } = await useMultiFileAuthState(authDir);
  const setKeys = state.keys.set.bind(state.keys);
  state.keys.set = async (data: SignalDataSet): Promise<void> => {
    await setKeys(data);
    const files: string[] = [];
    for (const [category, entries] of Object.entries(data)) {
      for (const id of Object.keys(entries ?? {})) files.push(join(authDir, keyFileName(category, id)));
    }
    await Promise.all(files.map(chmodIfExists));
  };
  let pending: Promise<void> = Promise.resolve();
  const save = async (): Promise<void> => {
    await saveCreds();
    await chmodIfExists(join(authDir, 'creds.json'));
  };
  return {
    state,
    saveCreds: () => {
      // Serialised so the last write wins and flush() sees all of them.
      const next = pending.then(save, save);
      pending = next.catch(() => undefined);
      return next;
    },
    flush: () => pending,
  };
}

export interface BaileysSocketOptions {
  /** Baileys' own log level, written to stderr. Its info level is very chatty. */
  logLevel?: 'silent' | 'error' | 'warn' | 'info' | 'debug';
}

/**
 * The production SocketFactory. Uses the protocol version bundled with Baileys
 * (no `fetchLatestBaileysVersion`: no network before the socket itself).
 */
export function createBaileysSocketFactory(options: BaileysSocketOptions = {}): SocketFactory {
  return async (authDir: string): Promise<WASocketLike> => {
    const auth = await openAuthState(authDir);
    const logger = pino({ level: options.logLevel ?? 'silent' }, pino.destination(2));
    const socket = makeWASocket({
      auth: { creds: auth.state.creds, keys: makeCacheableSignalKeyStore(auth.state.keys, logger) },
      logger,
      browser: Browsers.macOS('Chrome'),
      // Staying "offline" keeps notifications on the owner's phone.
      markOnlineOnConnect: false,
      syncFullHistory: false,
      shouldSyncHistoryMessage: () => false,
    });
    socket.ev.on('creds.update', () => {
      auth.saveCreds().catch((err: unknown) => {
        logger.error({ err }, 'saving WhatsApp credentials failed');
      });
    });
    return adaptSocket(socket, logger);
  };
}

type BaileysSocket = ReturnType<typeof makeWASocket>;

/** The structural check lives here so a Baileys change breaks this line, not the channel. */
function adaptSocket(socket: BaileysSocket, logger: pino.Logger): WASocketLike {
  return Object.assign(socket, {
    // A stream, so a big file never sits in memory whole; an expired media URL is re-requested from the phone.
    downloadMedia: async (message: WAMessageLike): Promise<AsyncIterable<Uint8Array>> =>
      downloadMediaMessage(
        message as WAMessage,
        'stream',
        {},
        { reuploadRequest: socket.updateMediaMessage, logger },
      ) as Promise<AsyncIterable<Uint8Array>>,
  });
}
