// A Channel double for host tests: records what was sent, can go offline and
// can be told to fail sends, and lets a test inject inbound events.

import fs from 'node:fs';
import type { Channel, ChannelEvents } from '../../src/core/channel.js';
import type { InboundMessage, OutboundFile } from '../../src/core/types.js';

export class FakeChannel implements Channel {
  readonly name = 'fake';
  readonly sent: Array<{ jid: string; text: string }> = [];
  connected = false;
  failSends: string | null = null;
  private counter = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly events: ChannelEvents,
    readonly showsBotName = true,
    readonly maxMessageLength = 4000,
  ) {}

  ownsJid(jid: string): boolean {
    return jid.startsWith('fake:');
  }

  async connect(): Promise<void> {
    this.setConnected(true);
  }

  async disconnect(): Promise<void> {
    this.setConnected(false);
  }

  setConnected(connected: boolean): void {
    this.connected = connected;
    this.events.onConnectionChange(connected);
  }

  isConnected(): boolean {
    return this.connected;
  }

  async sendMessage(jid: string, text: string): Promise<void> {
    if (!this.connected) throw new Error('disconnected');
    if (this.failSends !== null) throw new Error(this.failSends);
    this.sent.push({ jid, text });
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Files sent (send_file); the bytes are read at send time, as a transport would. */
  readonly sentFiles: Array<{ jid: string; type: string; caption: string; bytes: Buffer }> = [];

  async sendFile(jid: string, file: OutboundFile & { caption: string }): Promise<void> {
    if (!this.connected) throw new Error('disconnected');
    if (this.failSends !== null) throw new Error(this.failSends);
    this.sentFiles.push({ jid, type: file.type, caption: file.caption, bytes: fs.readFileSync(file.path) });
  }

  /** Injects an inbound message as the channel would. */
  receive(chatJid: string, text: string | null, extra: Partial<InboundMessage> = {}): InboundMessage {
    const message: InboundMessage = {
      chatJid,
      id: `m${++this.counter}`,
      sender: 'fake:alice',
      senderName: 'Alice',
      text,
      timestamp: new Date(Date.UTC(2026, 0, 1, 12, 0, 0)).toISOString(),
      fromMe: false,
      isBotMessage: false,
      ...extra,
    };
    this.events.onMessage(message);
    return message;
  }

  /** Resolves once at least `count` messages were sent. */
  async waitForSent(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.sent.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.sent.length} of ${count} messages were sent`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}
