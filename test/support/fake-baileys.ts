// A stand-in for Baileys' socket with the same event API and methods as
// WASocketLike, so the WhatsApp channel and pairing flow are tested without
// WhatsApp's servers: it records calls and lets tests emit events and failures.

import { EventEmitter } from 'node:events';
import type {
  SocketFactory,
  WAEventMapLike,
  WAEventName,
  WAListener,
  WAMessageLike,
  WAOutboundContent,
  WASocketLike,
} from '../../src/channels/whatsapp/types.js';

/** An Error shaped like Baileys' Boom close errors. */
export function disconnectError(statusCode: number, message = `closed (${statusCode})`): Error {
  return Object.assign(new Error(message), { output: { statusCode } });
}

/**
 * What Baileys closes with when the WebSocket itself fails (DNS, refused, unreachable):
 * status 408 and the socket error in `data`, as its mapWebSocketError builds it.
 */
export function socketError(errno: string, message = `getaddrinfo ${errno} web.whatsapp.com`): Error {
  const cause = Object.assign(new Error(message), { code: errno });
  return Object.assign(new Error(`WebSocket Error (${message})`), {
    output: { statusCode: 408 },
    data: cause,
  });
}

export class FakeBaileysSocket implements WASocketLike {
  private readonly emitter = new EventEmitter();
  readonly ev = {
    on: <E extends WAEventName>(event: E, listener: WAListener<E>): void => {
      this.emitter.on(event, listener);
    },
    off: <E extends WAEventName>(event: E, listener: WAListener<E>): void => {
      this.emitter.off(event, listener);
    },
  };
  user: { id: string; lid?: string; name?: string } | undefined;
  authState = { creds: { registered: false } };

  /** LID → PN entries the mapping store knows, and every lookup made. */
  readonly lidMap = new Map<string, string>();
  readonly lidLookups: string[] = [];
  readonly signalRepository = {
    lidMapping: {
      getPNForLID: async (lid: string): Promise<string | null> => {
        this.lidLookups.push(lid);
        return this.lidMap.get(lid) ?? null;
      },
    },
  };

  groups: Record<string, { id: string; subject: string }> = {};
  groupFetchError: Error | null = null;
  groupFetches = 0;

  readonly sent: { jid: string; content: { text: string } }[] = [];
  /** Photos and documents sent (send_file), apart from text so text assertions stay simple. */
  readonly sentFiles: { jid: string; content: Exclude<WAOutboundContent, { text: string }> }[] = [];
  sendError: Error | null = null;
  readonly presence: { type: string; jid: string | undefined }[] = [];
  presenceError: Error | null = null;

  pairingCode = 'ABCD1234';
  pairingCodeError: Error | null = null;
  readonly pairingRequests: string[] = [];
  endCalls = 0;

  constructor(user?: { id: string; lid?: string; name?: string }) {
    this.user = user;
  }

  async groupFetchAllParticipating(): Promise<Record<string, { id: string; subject: string }>> {
    this.groupFetches += 1;
    if (this.groupFetchError) throw this.groupFetchError;
    return { ...this.groups };
  }

  async sendMessage(jid: string, content: WAOutboundContent): Promise<unknown> {
    if (this.sendError) throw this.sendError;
    if ('text' in content) this.sent.push({ jid, content });
    else this.sentFiles.push({ jid, content });
    return { key: { id: `sent-${this.sent.length}` } };
  }

  /** Media bytes by message id; a missing id fails the download, as an expired media key does. */
  readonly media = new Map<string, Buffer>();
  readonly downloads: string[] = [];

  async downloadMedia(message: WAMessageLike): Promise<AsyncIterable<Uint8Array>> {
    const id = message.key.id ?? '';
    this.downloads.push(id);
    const bytes = this.media.get(id);
    if (!bytes) throw new Error(`no media for ${id}`);
    return (async function* () {
      for (let at = 0; at < bytes.length; at += 16 * 1024) yield bytes.subarray(at, at + 16 * 1024);
    })();
  }

  async sendPresenceUpdate(type: 'composing' | 'paused', jid?: string): Promise<void> {
    if (this.presenceError) throw this.presenceError;
    this.presence.push({ type, jid });
  }

  async requestPairingCode(phoneNumber: string): Promise<string> {
    this.pairingRequests.push(phoneNumber);
    if (this.pairingCodeError) throw this.pairingCodeError;
    return this.pairingCode;
  }

  async end(_error: Error | undefined): Promise<void> {
    this.endCalls += 1;
  }

  listenerCount(event: WAEventName): number {
    return this.emitter.listenerCount(event);
  }

  emit<E extends WAEventName>(event: E, arg: WAEventMapLike[E]): void {
    this.emitter.emit(event, arg);
  }

  open(): void {
    this.emit('connection.update', { connection: 'open' });
  }

  close(statusCode?: number): void {
    const error = statusCode === undefined ? undefined : disconnectError(statusCode);
    this.emit('connection.update', { connection: 'close', lastDisconnect: { error, date: new Date(0) } });
  }

  closeWith(error: Error): void {
    this.emit('connection.update', { connection: 'close', lastDisconnect: { error, date: new Date(0) } });
  }

  qr(code: string): void {
    this.emit('connection.update', { qr: code });
  }

  upsert(messages: WAMessageLike[], type: 'notify' | 'append' = 'notify'): void {
    this.emit('messages.upsert', { messages, type });
  }
}

/** Hands out a new FakeBaileysSocket per factory call, like reconnects do with the real one. */
export class FakeBaileys {
  readonly sockets: FakeBaileysSocket[] = [];
  readonly authDirs: string[] = [];
  factoryError: Error | null = null;

  constructor(
    private readonly user: { id: string; lid?: string; name?: string } | undefined = {
      id: '15550001111:7@s.whatsapp.net',
      lid: '987654321:7@lid',
      name: 'Owner',
    },
    private readonly setup: (socket: FakeBaileysSocket, index: number) => void = () => {},
  ) {}

  readonly factory: SocketFactory = async (authDir: string) => {
    this.authDirs.push(authDir);
    if (this.factoryError) throw this.factoryError;
    const socket = new FakeBaileysSocket(this.user ? { ...this.user } : undefined);
    this.setup(socket, this.sockets.length);
    this.sockets.push(socket);
    return socket;
  };

  get latest(): FakeBaileysSocket {
    const socket = this.sockets[this.sockets.length - 1];
    if (!socket) throw new Error('no socket was created');
    return socket;
  }
}

/** Injected timers that only fire when a test advances them. */
export class ManualTimers {
  private nowMs = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { dueMs: number; delayMs: number; callback: () => void }>();

  readonly setTimer = (callback: () => void, delayMs: number): unknown => {
    const id = this.nextId++;
    this.timers.set(id, { dueMs: this.nowMs + delayMs, delayMs, callback });
    return id;
  };

  readonly clearTimer = (handle: unknown): void => {
    this.timers.delete(handle as number);
  };

  readonly now = (): number => this.nowMs;

  /** Delays of the timers still pending, in the order they were set. */
  pendingDelaysMs(): number[] {
    return [...this.timers.values()].map((t) => t.delayMs);
  }

  get size(): number {
    return this.timers.size;
  }

  /** Moves time forward, firing due timers in due order (including ones they set). */
  advance(ms: number): void {
    const targetMs = this.nowMs + ms;
    for (;;) {
      let nextId: number | null = null;
      let next: { dueMs: number; callback: () => void } | null = null;
      for (const [id, t] of this.timers) {
        if (t.dueMs <= targetMs && (!next || t.dueMs < next.dueMs)) {
          nextId = id;
          next = t;
        }
      }
      if (nextId === null || !next) break;
      this.timers.delete(nextId);
      this.nowMs = next.dueMs;
      next.callback();
    }
    this.nowMs = targetMs;
  }
}

/** Lets pending promise chains (factory calls, LID lookups) run. */
export function flushAsync(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
