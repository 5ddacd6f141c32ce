// Durable outbound delivery (SPEC §3.4). Text is formatted for its channel and
// written to SQLite before any send is tried; an item is marked sent only after
// the channel confirms. One timer is armed for the next retry — no polling — and
// a chat's items go out strictly in order, so a failure holds back the rest of
// that chat rather than reordering it.
//
// An answer and the state change that marks its question done (a cursor, a
// task's next run) commit in one transaction (`commitAnswer`). When storage
// fails (disk full), that pair is held in memory, in order, and written again
// later; the run goes on and nothing is marked done before its answer is stored.

import path from 'node:path';
import type { Channel } from '../core/channel.js';
import { formatOutbound } from '../core/outbound.js';
import type { OutboundFile, OutboxItem } from '../core/types.js';
import type { StoreApi } from '../store/api.js';
import type { Logger } from '../core/logger.js';
import { storageProblem } from '../store/errors.js';

export interface OutboxOptions {
  store: StoreApi;
  channels: readonly Channel[];
  assistantName: string;
  now: () => number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  logger: Logger;
  /** First wait before a held (unstored) answer is written again; doubles up to 30 s. */
  heldRetryBaseMs?: number;
  /** Told when storage fails or recovers, so the owner hears of it (log, audit). */
  onStorageTrouble?: (problem: string | null) => void;
  /** Told after each confirmed send (the host copies main's messages to attached consoles). */
  onDelivered?: (item: { id: number; chatJid: string; text: string }, via: Channel) => void;
}

/** An answer not yet stored: its chunks and the state change that commits with it. */
interface HeldAnswer {
  chatJid: string;
  chunks: string[];
  commit: () => void;
  afterCommit?: () => void;
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
  private readonly held: HeldAnswer[] = [];
  private heldTimer: NodeJS.Timeout | null = null;
  private heldRetryMs = 0;

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
    const chunks = this.format(chatJid, text);
    if (chunks.length === 0) return [];
    const ids = this.options.store.enqueueOutbound(chatJid, chunks, this.options.now());
    this.kick();
    return ids;
  }

  /** Stores a file (a host path the outbox reads when it sends) with its caption; returns its id. */
  enqueueFile(chatJid: string, file: OutboundFile, caption: string): number {
    // Where messages appear under the owner's name, the name prefix marks the file as
    // the assistant's too (its echo must never count as the owner's input).
    const channel = this.channelFor(chatJid);
    const shown =
      channel && !channel.showsBotName
        ? `${this.options.assistantName}: ${caption === '' ? path.basename(file.path) : caption}`
        : caption;
    const id = this.options.store.enqueueOutboundFile(
      chatJid,
      { ...file, caption: shown },
      this.options.now(),
    );
    this.kick();
    return id;
  }

  /**
   * Stores `text` (null or empty: nothing to send) and runs `commit` in the
   * same transaction; `afterCommit` runs once both are stored. Never throws
   * for storage trouble: the pair is held and written later, in order.
   */
  commitAnswer(chatJid: string, text: string | null, commit: () => void, afterCommit?: () => void): void {
    const chunks = text === null ? [] : this.format(chatJid, text);
    this.held.push({ chatJid, chunks, commit, afterCommit });
    if (this.held.length === 1) this.writeHeld();
  }

  /** Answers waiting for storage to come back. */
  heldCount(): number {
    return this.held.length;
  }

  private format(chatJid: string, text: string): string[] {
    const channel = this.channelFor(chatJid);
    return formatOutbound(text, {
      assistantName: this.options.assistantName,
      showsBotName: channel?.showsBotName ?? true,
      maxLength: channel?.maxMessageLength ?? 4000,
    });
  }

  /** Writes held answers oldest first; stops at the first storage failure and retries later. */
  private writeHeld(): void {
    const { store, now, logger } = this.options;
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    let wrote = false;
    while (this.held.length > 0) {
      const answer = this.held[0];
      try {
        store.transaction(() => {
          if (answer.chunks.length > 0) store.enqueueOutbound(answer.chatJid, answer.chunks, now());
          answer.commit();
        });
      } catch (err) {
        const problem = storageProblem(err);
        if (!problem) {
          // Not storage: a bug in `commit`. Dropping the pair keeps later answers flowing; the
          // question stays undone and is re-run at the next start.
          this.held.shift();
          logger.error({ err, chatJid: answer.chatJid }, 'answer could not be committed');
          continue;
        }
        if (this.heldRetryMs === 0) {
          logger.error(
            { err, problem, held: this.held.length },
            'storage failed; answers are held in memory',
          );
          this.options.onStorageTrouble?.(problem);
        }
        const baseMs = this.options.heldRetryBaseMs ?? 1000;
        this.heldRetryMs = Math.min(30_000, this.heldRetryMs === 0 ? baseMs : this.heldRetryMs * 2);
        this.heldTimer = setTimeout(() => this.writeHeld(), this.heldRetryMs);
        this.heldTimer.unref?.();
        break;
      }
      this.held.shift();
      wrote = true;
      answer.afterCommit?.();
    }
    if (this.held.length === 0 && this.heldRetryMs !== 0) {
      this.heldRetryMs = 0;
      logger.info('storage is back; held answers are stored');
      this.options.onStorageTrouble?.(null);
    }
    if (wrote) this.kick();
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
    this.flushing = this.flushLoop()
      .catch((err: unknown) => {
        // Marking an item sent failed (disk full): it stays pending and is sent again (same
        // outbox id, so a channel can tell the repeat); try again later, never crash.
        this.options.logger.error({ err }, 'outbox flush failed; retrying later');
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => this.kick(), this.options.heldRetryBaseMs ?? 1000);
        this.timer.unref?.();
      })
      .finally(() => {
        this.flushing = null;
        // A kick that came after the loop's last check but before this point must not be lost.
        if (this.flushAgain) this.kick();
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
    // A last try: what still cannot be stored was never marked done, so it is re-run at the next start.
    if (this.held.length > 0) this.writeHeld();
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
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
        if (item.file) {
          if (!channel.sendFile) {
            const error = `the ${channel.name} channel cannot send files`;
            store.markFailed(item.id, error);
            this.settle(item.id, { ok: false, error });
            delivered = true;
            continue;
          }
          await channel.sendFile(item.chatJid, { ...item.file, caption: item.text }, { outboxId: item.id });
        } else {
          await channel.sendMessage(item.chatJid, item.text, { outboxId: item.id });
        }
        store.markSent(item.id);
        this.settle(item.id, { ok: true });
        if (!item.file) this.options.onDelivered?.(item, channel);
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
