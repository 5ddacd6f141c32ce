// WhatsApp as a Channel: keeps one Baileys socket alive (backoff reconnects,
// clean stop when the device is logged out), turns upserts into InboundMessages
// with phone JIDs, and sends text. Queueing and retries of outbound text belong
// to the host's outbox, so sends here fail fast when disconnected.

import { NAME_ONLY_TIMESTAMP, type Channel, type ChannelEvents } from '../../core/channel.js';
import type { Logger } from '../../core/logger.js';
import path from 'node:path';
import { isPhotoType } from '../../core/media.js';
import type { InboundMessage, InboundReply, OutboundFile } from '../../core/types.js';
import { readLinkedAccount } from './auth.js';
import { Backoff } from './backoff.js';
import { classifyDisconnect, isUnreachable, retrySentence } from './disconnect.js';
import { LidResolver, normalizeJid, splitJid } from './lid.js';
import { attachmentOf, mediaOf } from './media.js';
import { parseUpsertMessage, type ParsedMessage, type ParsedQuote } from './parse.js';
import {
  DisconnectCode,
  type ClearTimer,
  type SetTimer,
  type SocketFactory,
  type WAEventMapLike,
  type WAMessageLike,
  type WASocketLike,
} from './types.js';

/** WhatsApp allows ~65k characters; shorter messages read better on a phone. */
export const WHATSAPP_MAX_MESSAGE_LENGTH = 4000;

export const DEFAULT_NAME_SYNC_INTERVAL_MS = 24 * 60 * 60 * 1000;
const LID_CACHE_MAX_ENTRIES = 5000;
const GROUP_NAME_CACHE_MAX_ENTRIES = 5000;

/** This many session takeovers (close 440) within the window stop the channel. */
const REPLACED_MAX_IN_WINDOW = 3;
const REPLACED_WINDOW_MS = 10 * 60_000;

export const RELINK_HINT = 'Run `nanoclaw auth whatsapp` to link it again.';

export interface WhatsAppChannelDeps {
  authDir: string;
  events: ChannelEvents;
  socketFactory: SocketFactory;
  logger: Logger;
  /** Epoch milliseconds. */
  now: () => number;
  setTimer: SetTimer;
  clearTimer: ClearTimer;
  /** Uniform in [0, 1), for reconnect jitter. */
  random: () => number;
  /** The host prefixes replies with `"<assistantName>: "`; that prefix marks the bot's own messages. */
  assistantName: string;
  reconnect: { baseMs: number; maxMs: number };
  /** Defaults to a day. */
  nameSyncIntervalMs?: number;
  /**
   * Called once when the channel stopped for good: WhatsApp revoked this device
   * (or it was never linked), or another client keeps taking the session over.
   */
  onStopped?(message: string): void;
}

function statusCodeOf(error: Error | undefined): number | undefined {
  // Baileys closes with a Boom error; its HTTP-like status is the disconnect reason.
  const output = (error as { output?: { statusCode?: unknown } } | undefined)?.output;
  return typeof output?.statusCode === 'number' ? output.statusCode : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class WhatsAppChannel implements Channel {
  readonly name = 'whatsapp';
  readonly showsBotName = false;
  readonly maxMessageLength = WHATSAPP_MAX_MESSAGE_LENGTH;

  private socket: WASocketLike | null = null;
  private detachSocket: (() => void) | null = null;
  private connected = false;
  /** Set by disconnect() or logout: no more sockets until connect() again (not after logout). */
  private stopped = true;
  private loggedOut = false;
  private replacedAtMs: number[] = [];
  private reconnectTimer: unknown = null;
  private nameSyncTimer: unknown = null;
  private readonly backoff: Backoff;
  private readonly lids: LidResolver;
  private readonly groupNames = new Map<string, string>();
  /** Upserts are handled one after another so LID lookups cannot reorder messages. */
  private inbound: Promise<void> = Promise.resolve();

  constructor(private readonly deps: WhatsAppChannelDeps) {
    this.backoff = new Backoff({ ...deps.reconnect, random: deps.random });
    this.lids = new LidResolver({
      lookup: (lid) => this.socket?.signalRepository.lidMapping.getPNForLID(lid) ?? Promise.resolve(null),
      ownAccount: () => this.socket?.user,
      maxEntries: LID_CACHE_MAX_ENTRIES,
    });
  }

  ownsJid(jid: string): boolean {
    return jid.endsWith('@s.whatsapp.net') || jid.endsWith('@g.us') || jid.endsWith('@lid');
  }

  isConnected(): boolean {
    return this.connected;
  }

  /**
   * Starts the socket and returns; the open is reported through
   * `onConnectionChange(true)` (an offline start must not block the host).
   * Rejects when no account is linked or the device was logged out.
   */
  async connect(): Promise<void> {
    if (this.loggedOut) throw new Error(`WhatsApp logged this device out. ${RELINK_HINT}`);
    if (!this.stopped) return;
    if (!readLinkedAccount(this.deps.authDir)) {
      throw new Error('No linked WhatsApp account: run `nanoclaw auth whatsapp`.');
    }
    this.stopped = false;
    try {
      await this.openSocket();
    } catch (err) {
      this.stopped = true;
      throw err;
    }
  }

  async disconnect(): Promise<void> {
    this.stopped = true;
    this.cancelTimers();
    await this.closeSocket();
    this.setConnected(false);
  }

  async sendMessage(jid: string, text: string): Promise<void> {
    const socket = this.socket;
    if (!this.connected || !socket) throw new Error('WhatsApp is not connected');
    await socket.sendMessage(jid, { text });
  }

  /** Photos go as images, everything else as a document with its file name. */
  async sendFile(jid: string, file: OutboundFile & { caption: string }): Promise<void> {
    const socket = this.socket;
    if (!this.connected || !socket) throw new Error('WhatsApp is not connected');
    const caption = file.caption === '' ? {} : { caption: file.caption };
    await socket.sendMessage(
      jid,
      isPhotoType(file.type)
        ? { image: { url: file.path }, mimetype: file.type, ...caption }
        : {
            document: { url: file.path },
            mimetype: file.type,
            fileName: path.basename(file.path),
            ...caption,
          },
    );
  }

  async setTyping(jid: string, typing: boolean): Promise<void> {
    const socket = this.socket;
    if (!this.connected || !socket) return;
    try {
      await socket.sendPresenceUpdate(typing ? 'composing' : 'paused', jid);
    } catch (err) {
      this.deps.logger.debug({ jid, err: errorText(err) }, 'whatsapp: typing update failed');
    }
  }

  /**
   * Reports every participating group's name; runs at open, daily, and when the
   * host asks. A name is not activity: a quiet group must not sort as active.
   */
  async syncChatNames(): Promise<void> {
    const socket = this.socket;
    if (!this.connected || !socket) return;
    try {
      const groups = await socket.groupFetchAllParticipating();
      for (const group of Object.values(groups)) {
        if (!group.id || !group.subject) continue;
        this.rememberGroupName(group.id, group.subject);
        this.deps.events.onChatMetadata({
          jid: group.id,
          name: group.subject,
          timestamp: NAME_ONLY_TIMESTAMP,
        });
      }
      this.deps.logger.info({ groups: Object.keys(groups).length }, 'whatsapp: group names synced');
    } catch (err) {
      this.deps.logger.warn({ err: errorText(err) }, 'whatsapp: group name sync failed');
    }
  }

  private async openSocket(): Promise<void> {
    const socket = await this.deps.socketFactory(this.deps.authDir);
    if (this.stopped) {
      // disconnect() ran while the factory was loading the auth state.
      await Promise.resolve(socket.end(undefined)).catch(() => undefined);
      return;
    }
    this.socket = socket;
    const onConnection = (update: WAEventMapLike['connection.update']): void => {
      if (this.socket === socket) this.handleConnectionUpdate(update);
    };
    const onUpsert = (upsert: WAEventMapLike['messages.upsert']): void => {
      if (this.socket !== socket) return;
      const batch = upsert.messages;
      this.inbound = this.inbound
        .then(() => this.handleMessages(batch))
        .catch((err: unknown) => {
          this.deps.logger.error({ err: errorText(err) }, 'whatsapp: inbound message handling failed');
        });
    };
    // A renamed group, or one the account just joined: both happen now, in that chat.
    const onGroups = (updates: WAEventMapLike['groups.update'] | WAEventMapLike['groups.upsert']): void => {
      if (this.socket !== socket) return;
      const timestamp = new Date(this.deps.now()).toISOString();
      for (const update of updates) {
        if (!update.id || !update.subject) continue;
        this.rememberGroupName(update.id, update.subject);
        this.deps.events.onChatMetadata({ jid: update.id, name: update.subject, timestamp });
      }
    };
    socket.ev.on('connection.update', onConnection);
    socket.ev.on('messages.upsert', onUpsert);
    socket.ev.on('groups.update', onGroups);
    socket.ev.on('groups.upsert', onGroups);
    this.detachSocket = () => {
      socket.ev.off('connection.update', onConnection);
      socket.ev.off('messages.upsert', onUpsert);
      socket.ev.off('groups.update', onGroups);
      socket.ev.off('groups.upsert', onGroups);
    };
  }

  private async closeSocket(): Promise<void> {
    const socket = this.socket;
    this.detachSocket?.();
    this.detachSocket = null;
    this.socket = null;
    if (!socket) return;
    try {
      await socket.end(undefined);
    } catch (err) {
      this.deps.logger.debug({ err: errorText(err) }, 'whatsapp: ending socket failed');
    }
  }

  private handleConnectionUpdate(update: WAEventMapLike['connection.update']): void {
    if (update.qr) {
      // A QR means the stored credentials are not a linked device; the channel never pairs.
      this.stopChannel(`WhatsApp is not linked (it asked for a QR scan). ${RELINK_HINT}`, {
        loggedOut: true,
      });
      return;
    }
    if (update.connection === 'open') {
      this.backoff.reset();
      this.setConnected(true);
      this.deps.logger.info({ account: this.socket?.user?.id }, 'whatsapp: connected');
      void this.syncChatNames();
      this.armNameSync();
      return;
    }
    if (update.connection !== 'close') return;

    this.setConnected(false);
    const code = statusCodeOf(update.lastDisconnect?.error);
    if (code === DisconnectCode.loggedOut) {
      this.stopChannel(`WhatsApp logged this device out. ${RELINK_HINT}`, { loggedOut: true });
      return;
    }
    if (code === DisconnectCode.connectionReplaced && this.replacedTooOften()) {
      this.stopChannel(
        'Another client keeps taking over this WhatsApp session (is a second NanoClaw running with the same account?). ' +
          'Stop the other one, then restart NanoClaw.',
        { loggedOut: false },
      );
      return;
    }
    if (this.stopped) return;
    void this.closeSocket();
    // 515 is WhatsApp asking for an immediate restart (normal right after linking).
    const delayMs = code === DisconnectCode.restartRequired ? 0 : this.backoff.nextDelayMs();
    const why = classifyDisconnect(update.lastDisconnect?.error);
    if (isUnreachable(why)) {
      // No network, no DNS or timeouts: one plain sentence per attempt, the delay growing.
      this.deps.logger.warn(
        { code, errno: why.errno, delayMs, attempt: this.backoff.attempts },
        `whatsapp: ${retrySentence(why, delayMs)}`,
      );
    } else {
      const level = code === DisconnectCode.connectionReplaced ? 'warn' : 'info';
      this.deps.logger[level](
        { code, delayMs, reason: update.lastDisconnect?.error?.message },
        code === DisconnectCode.connectionReplaced
          ? 'whatsapp: another client took over this session; reconnecting'
          : 'whatsapp: connection closed; reconnecting',
      );
    }
    this.scheduleReconnect(delayMs);
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.reconnectTimer !== null) this.deps.clearTimer(this.reconnectTimer);
    this.reconnectTimer = this.deps.setTimer(() => {
      this.reconnectTimer = null;
      if (this.stopped) return;
      this.openSocket().catch((err: unknown) => {
        this.deps.logger.error({ err: errorText(err) }, 'whatsapp: reconnect failed');
        if (!this.stopped) this.scheduleReconnect(this.backoff.nextDelayMs());
      });
    }, delayMs);
  }

  private armNameSync(): void {
    if (this.nameSyncTimer !== null) return;
    const intervalMs = this.deps.nameSyncIntervalMs ?? DEFAULT_NAME_SYNC_INTERVAL_MS;
    this.nameSyncTimer = this.deps.setTimer(() => {
      this.nameSyncTimer = null;
      if (this.stopped) return;
      void this.syncChatNames();
      this.armNameSync();
    }, intervalMs);
  }

  private cancelTimers(): void {
    if (this.reconnectTimer !== null) this.deps.clearTimer(this.reconnectTimer);
    if (this.nameSyncTimer !== null) this.deps.clearTimer(this.nameSyncTimer);
    this.reconnectTimer = null;
    this.nameSyncTimer = null;
  }

  /**
   * One takeover can be a hiccup; several in a short time mean two hosts share
   * these credentials and would take the session from each other forever.
   */
  private replacedTooOften(): boolean {
    const nowMs = this.deps.now();
    this.replacedAtMs = this.replacedAtMs.filter((at) => nowMs - at < REPLACED_WINDOW_MS);
    this.replacedAtMs.push(nowMs);
    return this.replacedAtMs.length >= REPLACED_MAX_IN_WINDOW;
  }

  /** Stops for good (until the owner acts): no reconnects, one clear message. */
  private stopChannel(message: string, options: { loggedOut: boolean }): void {
    if (this.stopped && this.loggedOut) return;
    this.loggedOut = options.loggedOut;
    this.stopped = true;
    this.cancelTimers();
    void this.closeSocket();
    this.setConnected(false);
    this.deps.logger.error({ authDir: this.deps.authDir }, `whatsapp: ${message}`);
    this.deps.onStopped?.(message);
  }

  private setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    this.deps.events.onConnectionChange(connected);
  }

  private rememberGroupName(jid: string, name: string): void {
    this.groupNames.delete(jid);
    this.groupNames.set(jid, name);
    if (this.groupNames.size > GROUP_NAME_CACHE_MAX_ENTRIES) {
      const oldest = this.groupNames.keys().next().value;
      if (oldest !== undefined) this.groupNames.delete(oldest);
    }
  }

  private async handleMessages(messages: WAMessageLike[]): Promise<void> {
    for (const raw of messages) {
      // One bad message (or a host handler error) must not drop the rest of the batch.
      try {
        const parsed = parseUpsertMessage(raw);
        if (!parsed) continue;
        const message = this.withMedia(raw, await this.toInbound(parsed));
        this.deps.events.onChatMetadata({
          jid: message.chatJid,
          ...(message.chatName ? { name: message.chatName } : {}),
          timestamp: message.timestamp,
        });
        this.deps.events.onMessage(message);
      } catch (err) {
        this.deps.logger.error(
          { id: raw.key.id, chat: raw.key.remoteJid, err: errorText(err) },
          'whatsapp: inbound message handling failed',
        );
      }
    }
  }

  /**
   * A media message carries its file as an attachment the host fetches (only for
   * registered chats); the text is then the caption alone, the host adds the placeholder.
   */
  private withMedia(raw: WAMessageLike, message: InboundMessage): InboundMessage {
    const media = mediaOf(raw.message);
    if (!media || message.isBotMessage) return message;
    const download = (m: WAMessageLike): Promise<AsyncIterable<Uint8Array>> => {
      const socket = this.socket;
      if (!socket) return Promise.reject(new Error('WhatsApp is not connected'));
      return socket.downloadMedia(m);
    };
    return { ...message, text: media.caption, attachments: [attachmentOf(media, raw, download)] };
  }

  private async toInbound(parsed: ParsedMessage): Promise<InboundMessage> {
    const chatJid = await this.lids.toPhoneJid(parsed.chatJid, parsed.chatJidAlt);
    const own = this.socket?.user;
    const sender = parsed.senderJid
      ? await this.lids.toPhoneJid(parsed.senderJid, parsed.senderJidAlt)
      : own
        ? normalizeJid(own.id)
        : chatJid;
    const number = splitJid(sender)?.user ?? sender;
    const senderName = parsed.pushName ?? (parsed.fromMe ? own?.name : undefined) ?? number;
    const timestampMs = parsed.timestampSeconds !== null ? parsed.timestampSeconds * 1000 : this.deps.now();
    // In a one-to-one chat the other person's push name is the best chat name there is.
    const chatName = parsed.isGroup
      ? this.groupNames.get(chatJid)
      : !parsed.fromMe
        ? (parsed.pushName ?? undefined)
        : undefined;
    const text = parsed.text;
    const isBotMessage = parsed.fromMe && text !== null && text.startsWith(`${this.deps.assistantName}: `);
    const replyTo = parsed.quoted ? await this.quotedReply(parsed.quoted) : undefined;
    return {
      chatJid,
      id: parsed.id,
      sender,
      senderName,
      text,
      timestamp: new Date(timestampMs).toISOString(),
      fromMe: parsed.fromMe,
      isBotMessage,
      // The account is the owner's, in any chat; the assistant's replies go out through it too.
      fromOwner: parsed.fromMe && !isBotMessage,
      ...(chatName ? { chatName } : {}),
      ...(replyTo ? { replyTo } : {}),
    };
  }

  /** A quoted author is only a JID here: the host prefers the name stored with the quoted message. */
  private async quotedReply(quoted: ParsedQuote): Promise<InboundReply> {
    const own = this.socket?.user;
    let senderName: string | undefined;
    if (quoted.senderJid) {
      const jid = await this.lids.toPhoneJid(quoted.senderJid);
      const isOwn = own !== undefined && normalizeJid(own.id) === jid;
      senderName = (isOwn ? own.name : undefined) ?? splitJid(jid)?.user ?? jid;
    }
    return {
      id: quoted.id,
      ...(senderName ? { senderName } : {}),
      ...(quoted.text !== null ? { text: quoted.text } : {}),
    };
  }
}
