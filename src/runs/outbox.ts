// Durable outbound delivery (SPEC §3.4). Text is formatted for its channel and
// written to SQLite before any send is tried; an item is marked sent only after
// the channel confirms. One timer is armed for the next retry — no polling — and
// a chat's items go out strictly in order, so a failure holds back the rest of
// that chat rather than reordering it.

import type { Channel } from '../core/channel.js';
import { formatOutbound } from '../core/outbound.js';
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
      await this.flushOnce();
    } while (this.flushAgain && !this.stopped);
    this.armTimer();
  }

  private async flushOnce(): Promise<void> {
    const { store, now } = this.options;
    const items = store.pendingOutbound(now(), 500);
    // A chat with a failed or undeliverable item is held back for this pass so order is kept.
    const blockedChats = new Set<string>();
    for (const item of items) {
      if (this.stopped) return;
      if (blockedChats.has(item.chatJid)) continue;
      const channel = this.channelFor(item.chatJid);
      if (!channel) {
        store.markFailed(item.id, `no channel owns ${item.chatJid}`);
        this.settle(item.id, { ok: false, error: `no channel owns ${item.chatJid}` });
        continue;
      }
      if (!channel.isConnected()) {
        blockedChats.add(item.chatJid);
        continue;
      }
      try {
        await channel.sendMessage(item.chatJid, item.text);
        store.markSent(item.id);
        this.settle(item.id, { ok: true });
      } catch (err) {
        blockedChats.add(item.chatJid);
        this.recordFailure(item.id, item.attempts + 1, err instanceof Error ? err.message : String(err));
      }
    }
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

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    const next = this.options.store.nextOutboundAttemptAt();
    if (next === null) return;
    const delayMs = next - this.options.now();
    // Items due now are blocked on a disconnected channel; onConnectionChange kicks us.
    if (delayMs <= 0) return;
    this.timer = setTimeout(() => this.kick(), Math.min(delayMs, MAX_TIMER_MS));
    this.timer.unref?.();
  }
}
