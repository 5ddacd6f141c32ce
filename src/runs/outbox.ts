// Durable outbound delivery (SPEC §3.4). Text is formatted for its channel and
// written to SQLite before any send is tried; an item is marked sent only after
// the channel confirms. One timer is armed for the next retry — no polling — and
// a chat's items go out strictly in order, so a failure holds back the rest of
// that chat rather than reordering it.

import type { Channel } from '../core/channel.js';
import { formatOutbound } from '../core/outbound.js';
import type { OutboxItem } from '../core/types.js';
import type { StoreApi } from '../store/api.js';
import type { Logger } from '../core/logger.js';

export interface OutboxOptions {
  store: StoreApi;
  channels: readonly Channel[];
  assistantName: string;
  now: () => number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  logger: Logger;
}

export type DeliveryResult = { ok: true } | { ok: false; error: string };

const MAX_TIMER_MS = 2 ** 31 - 1;
/** How many pending items one pass looks at to find each chat's head. */
const HEAD_SCAN_LIMIT = 1000;

export class Outbox {
  private readonly options: OutboxOptions;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private flushAgain = false;
  private stopped = false;
  /** Callers waiting for a given outbox id to be settled (sent or failed). */
  private readonly waiters = new Map<number, Array<(result: DeliveryResult) => void>>();

  constructor(options: OutboxOptions) {
    this.options = options;
  }

  channelFor(chatJid: string): Channel | undefined {
    return this.options.channels.find((channel) => channel.ownsJid(chatJid));
  }

  /**
   * Formats `text` for the chat's channel (internal tags, name prefix, splitting)
   * and stores the chunks. Returns their ids; empty when there is nothing to send.
   */
  enqueue(chatJid: string, text: string): number[] {
    const channel = this.channelFor(chatJid);
    const chunks = formatOutbound(text, {
      assistantName: this.options.assistantName,
      showsBotName: channel?.showsBotName ?? true,
      maxLength: channel?.maxMessageLength ?? 4000,
    });
    if (chunks.length === 0) return [];
    const ids = this.options.store.enqueueOutbound(chatJid, chunks, this.options.now());
    this.kick();
    return ids;
  }

  /** Resolves when every given item is sent, or with the first failure / timeout. */
  async waitForDelivery(ids: number[], timeoutMs: number): Promise<DeliveryResult> {
    const pending = ids.map((id) => this.waitForOne(id));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<DeliveryResult>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            error: `not delivered within ${Math.round(timeoutMs / 1000)} s; it stays queued and will be retried`,
          }),
        timeoutMs,
      );
    });
    try {
      const all = Promise.all(pending).then(
        (results) => results.find((r) => !r.ok) ?? ({ ok: true } as DeliveryResult),
      );
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private waitForOne(id: number): Promise<DeliveryResult> {
    const item = this.options.store.getOutbound(id);
    if (!item) return Promise.resolve({ ok: false, error: 'unknown outbox item' });
    if (item.status === 'sent') return Promise.resolve({ ok: true });
    if (item.status === 'failed') return Promise.resolve({ ok: false, error: item.lastError ?? 'failed' });
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }

  private settle(id: number, result: DeliveryResult): void {
    const list = this.waiters.get(id);
    if (!list) return;
    this.waiters.delete(id);
    for (const resolve of list) resolve(result);
  }

  /** Starts a flush now (coalesced with one already running). */
  kick(): void {
    if (this.stopped) return;
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
    });
  }

  /** Resolves when nothing deliverable is pending (undeliverable chats are left waiting). */
  async drained(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** True when items are waiting (for any reason, including a disconnected channel). */
  hasPending(): boolean {
    return this.options.store.nextOutboundAttemptAt() !== null;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async flushLoop(): Promise<void> {
    do {
      this.flushAgain = false;
      // Delivering a chat's head makes its next item the head: go round again.
      if (await this.flushOnce()) this.flushAgain = true;
    } while (this.flushAgain && !this.stopped);
    this.armTimer();
  }

  /**
   * The first pending item of each chat, oldest chat first. Only a head may be
   * sent: a later item never overtakes one that waits for its retry.
   */
  private heads(): OutboxItem[] {
    const seen = new Set<string>();
    const heads: OutboxItem[] = [];
    for (const item of this.options.store.pendingOutbound(Number.MAX_SAFE_INTEGER, HEAD_SCAN_LIMIT)) {
      if (seen.has(item.chatJid)) continue;
      seen.add(item.chatJid);
      heads.push(item);
    }
    return heads;
  }

  /** One pass over the heads that are due on a connected channel; true when something was delivered. */
  private async flushOnce(): Promise<boolean> {
    const { store, now } = this.options;
    let delivered = false;
    for (const item of this.heads()) {
      if (this.stopped) break;
      if (item.nextAttemptAt > now()) continue;
      const channel = this.channelFor(item.chatJid);
      if (!channel) {
        store.markFailed(item.id, `no channel owns ${item.chatJid}`);
        this.settle(item.id, { ok: false, error: `no channel owns ${item.chatJid}` });
        delivered = true; // the chat's next item is now its head
        continue;
      }
      // A disconnected channel's items wait; onConnectionChange kicks us.
      if (!channel.isConnected()) continue;
      try {
        await channel.sendMessage(item.chatJid, item.text);
        store.markSent(item.id);
        this.settle(item.id, { ok: true });
        delivered = true;
      } catch (err) {
        this.recordFailure(item.id, item.attempts + 1, err instanceof Error ? err.message : String(err));
      }
    }
    return delivered;
  }

  private recordFailure(id: number, attempts: number, error: string): void {
    const { store, now, retryBaseMs, retryMaxMs, maxAttempts, logger } = this.options;
    if (attempts >= maxAttempts) {
      store.markFailed(id, error);
      logger.error({ outboxId: id, attempts, error }, 'outbound message failed permanently');
      this.settle(id, { ok: false, error });
      return;
    }
    const delayMs = Math.min(retryMaxMs, retryBaseMs * 2 ** (attempts - 1));
    store.markAttemptFailed(id, error, now() + delayMs);
    logger.warn({ outboxId: id, attempts, delayMs, error }, 'outbound message send failed; will retry');
    // The agent's tool call learns of the failure at once; the item still retries.
    this.settle(id, { ok: false, error: `send failed (${error}); will retry` });
  }

  /** One timer for the earliest retry among heads whose channel can send now. */
  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    const waiting = this.heads().filter((item) => this.channelFor(item.chatJid)?.isConnected());
    if (waiting.length === 0) return;
    const nextMs = Math.min(...waiting.map((item) => item.nextAttemptAt));
    const delayMs = Math.max(0, nextMs - this.options.now());
    this.timer = setTimeout(() => this.kick(), Math.min(delayMs, MAX_TIMER_MS));
    this.timer.unref?.();
  }
}
