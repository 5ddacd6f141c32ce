// The contract between the host and a chat transport. Channels know nothing of
// SQLite or runs: they report events and send text they are given.

import type { InboundMessage, OutboundFile } from './types.js';

/**
 * The timestamp of a name learned without any chat activity (a channel's group
 * list at connect): the epoch, so it never moves a chat's last activity and a
 * chat known only by name sorts after every active one.
 */
export const NAME_ONLY_TIMESTAMP = new Date(0).toISOString();

export interface ChannelEvents {
  /** A message event. The host stores it synchronously before anything else happens. */
  onMessage(message: InboundMessage): void;
  /** Chat metadata only (name, activity), for chats with or without messages. */
  onChatMetadata(chat: { jid: string; name?: string | null; timestamp: string }): void;
  /** Connection state changes; the host flushes the outbox on `true`. */
  onConnectionChange(connected: boolean): void;
}

export interface Channel {
  /** Stable name: `whatsapp`, `local`. */
  readonly name: string;
  /** False when messages appear under the owner's own name, so the host prefixes the assistant's name. */
  readonly showsBotName: boolean;
  /** Maximum characters of one outbound message. */
  readonly maxMessageLength: number;
  ownsJid(jid: string): boolean;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  isConnected(): boolean;
  /**
   * Resolves once the transport confirmed the send; rejects with a reason otherwise.
   * `outboxId` is stable across re-sends of one item (a crash between the send and
   * its confirmation re-sends it), so a transport can let the receiver drop repeats.
   */
  sendMessage(jid: string, text: string, delivery?: { outboxId: number }): Promise<void>;
  /**
   * Sends a file from disk (images as photos, the rest as documents), resolving
   * once the transport confirmed it. Absent: the channel cannot send files.
   */
  sendFile?(
    jid: string,
    file: OutboundFile & { caption: string },
    delivery?: { outboxId: number },
  ): Promise<void>;
  /** Shows or clears a typing indicator; best effort. */
  setTyping?(jid: string, typing: boolean): Promise<void>;
  /** A copy of a message another channel delivered (the terminal's view of main); best effort. */
  mirror?(jid: string, text: string, delivery: { outboxId: number }): void;
  /** Refreshes chat names from the transport; best effort. */
  syncChatNames?(): Promise<void>;
}
