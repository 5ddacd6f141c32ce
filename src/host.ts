// Wiring only: builds the store, outbox, queue, router, scheduler, tools and
// runs, and connects their events. Nothing here decides behaviour; every
// decision lives in the module that owns it. Tests build a Host with their own
// channels and an in-process AgentRuns double.

import fs from 'node:fs';
import type { AuditReason } from './core/audit.js';
import type { Channel, ChannelEvents } from './core/channel.js';
import type { Logger } from './core/logger.js';
import type { Config } from './config/config.js';
import { GroupQueue } from './queue/group-queue.js';
import { MediaIngest, pruneDayDirs, pruneMedia } from './runs/media.js';
import { Outbox } from './runs/outbox.js';
import { Router } from './runs/router.js';
import { promptViewFor } from './runs/prompt-context.js';
import { ToolHost } from './runs/tools.js';
import type { Transcriber } from './runs/transcribe.js';
import type { AgentRuns } from './runs/types.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { StoreApi } from './store/api.js';
import { storageProblem } from './store/errors.js';
import { openStore } from './store/store.js';

export interface HostDeps {
  config: Config;
  logger: Logger;
  /** Channels are built once the host can hand them its event sink. */
  makeChannels: (events: ChannelEvents) => Channel[];
  /** Builds the agent runs around the tool host (the real one spawns sandboxes). */
  makeRuns: (parts: { store: StoreApi; tools: ToolHost }) => AgentRuns;
  now?: () => number;
  random?: () => number;
  readEgressAllowlist?: () => unknown;
  /** Turns voice notes into text on the host; absent or null keeps their placeholder. */
  transcriber?: Transcriber | null;
}

export interface Host {
  readonly store: StoreApi;
  readonly router: Router;
  readonly scheduler: Scheduler;
  readonly outbox: Outbox;
  readonly queue: GroupQueue;
  readonly channels: Channel[];
  readonly tools: ToolHost;
  start(): Promise<void>;
  /** Resolves when no run is live or queued and the outbox has nothing deliverable. */
  settled(): Promise<void>;
  /** SPEC §5.5: stop accepting, ask runs to finish, wait the grace, kill the rest. */
  stop(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The host-only spool send_file copies files to (under data/, which no sandbox mounts whole). */
function outboundFilesDir(config: Config): string {
  return `${config.paths.dataDir}/outbox-files`;
}

/** Free bytes for an unprivileged writer on the disk holding `dir`. */
export function freeDiskBytes(dir: string): number {
  const stats = fs.statfsSync(dir);
  return stats.bavail * stats.bsize;
}

/**
 * Storage trouble reaches the owner as a log line (where it happens) and an audit
 * record; on a full disk that record waits in memory until it can be written.
 */
function storageTroubleReporter(store: StoreApi, target: string): (problem: string | null) => void {
  let current: string | null = null;
  let unwritten: AuditReason | null = null;
  const write = (reason: AuditReason): boolean => {
    try {
      store.audit({ group: null, runId: null, action: 'storage', target, reason });
      return true;
    } catch {
      return false;
    }
  };
  return (problem) => {
    if (problem === current) return;
    current = problem;
    if (problem === null) {
      if (unwritten && write(unwritten)) unwritten = null;
      return;
    }
    const reason = problem === 'full' ? 'disk_full' : problem === 'disk_low' ? 'disk_low' : 'storage_failed';
    if (!write(reason)) unwritten = reason;
  };
}

export function createHost(deps: HostDeps): Host {
  const { config, logger } = deps;
  const now = deps.now ?? Date.now;
  for (const dir of [
    config.paths.storeDir,
    config.paths.groupsDir,
    config.paths.sessionsDir,
    config.paths.runsDir,
  ]) {
    fs.mkdirSync(dir, { recursive: true });
  }
  fs.mkdirSync(`${config.paths.groupsDir}/global`, { recursive: true });

  const store = openStore(config.paths.dbPath);
  const onStorageTrouble = storageTroubleReporter(store, config.paths.storeDir);
  // Filled once the channels exist; the outbox and the tools look channels up at send time.
  const channels: Channel[] = [];
  const timers = {
    setTimer: (fn: () => void, ms: number) => setTimeout(fn, ms),
    clearTimer: (timer: unknown) => clearTimeout(timer as ReturnType<typeof setTimeout>),
  };
  const channelFor = (jid: string): Channel | undefined => channels.find((c) => c.ownsJid(jid));

  const outbox = new Outbox({
    store,
    channels,
    assistantName: config.assistantName,
    now,
    retryBaseMs: config.outboxRetryBaseMs,
    retryMaxMs: config.outboxRetryMaxMs,
    maxAttempts: config.outboxMaxAttempts,
    logger,
    onStorageTrouble,
    onDelivered: (item, via) => {
      for (const channel of channels) {
        if (channel !== via) channel.mirror?.(item.chatJid, item.text, { outboxId: item.id });
      }
    },
  });
  const tools = new ToolHost({
    store,
    outbox,
    logger,
    now,
    timeZone: config.timeZone,
    minTaskIntervalMs: config.minTaskIntervalMs,
    maxActiveTasksPerGroup: config.maxActiveTasksPerGroup,
    groupsDir: config.paths.groupsDir,
    sendTimeoutMs: 30_000,
    // The scheduler is built below; tools are only called once the host runs.
    onTasksChanged: () => scheduler.reschedule(),
    readEgressAllowlist: deps.readEgressAllowlist ?? (() => ({})),
    syncChatNames: async () => {
      await Promise.allSettled(channels.map((c) => c.syncChatNames?.()));
    },
    files: { maxBytes: config.maxMediaFileMb * 1024 * 1024, spoolDir: outboundFilesDir(config) },
  });

  let queue: GroupQueue | undefined;
  const router = new Router({
    store,
    runs: deps.makeRuns({ store, tools }),
    outbox,
    logger,
    now,
    makeQueue: (execute, onRetriesExhausted) => {
      queue = new GroupQueue({
        maxConcurrentRuns: config.maxConcurrentRuns,
        maxPendingTasksPerGroup: config.maxPendingTasksPerGroup,
        retryBaseMs: config.retryBaseMs,
        maxRetries: config.maxRetries,
        random: deps.random ?? Math.random,
        ...timers,
        execute,
        onRetriesExhausted,
      });
      return queue;
    },
    tasks: {
      record: (taskId, finish) => scheduler.recordRun(taskId, finish),
      release: (taskId) => scheduler.release(taskId),
    },
    groupsDir: config.paths.groupsDir,
    promptView: (group) =>
      promptViewFor(group, {
        assistantName: config.assistantName,
        timeZone: config.timeZone,
        now,
        channelName: (jid) => channelFor(jid)?.name,
      }),
    maxPromptBytes: config.maxPromptBytes,
    maxMessageBytes: config.maxMessageBytes,
    minFreeDiskBytes: config.minFreeDiskMb * 1024 * 1024,
    freeDiskBytes: () => freeDiskBytes(config.paths.storeDir),
    onStorageTrouble,
    onBusyChange: (chatJid, busy) => {
      void channelFor(chatJid)
        ?.setTyping?.(chatJid, busy)
        .catch(() => undefined);
    },
  });
  if (!queue) throw new Error('router did not build its queue');
  const workQueue: GroupQueue = queue;
  const scheduler = new Scheduler({
    store,
    timeZone: config.timeZone,
    now,
    ...timers,
    onDue: (task) => router.offerTask(task),
  });

  const media = new MediaIngest({
    groupsDir: config.paths.groupsDir,
    groupFolderOf: (jid) => store.getGroupByJid(jid)?.folder,
    maxFileBytes: config.maxMediaFileMb * 1024 * 1024,
    groupQuotaBytes: config.groupMediaQuotaMb * 1024 * 1024,
    transcriber: deps.transcriber ?? null,
    logger,
    deliver: (message) => router.handleInbound(message, channelFor(message.chatJid)?.name ?? 'unknown'),
    journalDir: `${config.paths.dataDir}/media-pending`,
  });

  const events: ChannelEvents = {
    onMessage: (message) => media.accept(message),
    onChatMetadata: (chat) => {
      try {
        store.upsertChat({
          jid: chat.jid,
          name: chat.name,
          channel: channelFor(chat.jid)?.name ?? 'unknown',
          timestamp: chat.timestamp,
        });
      } catch (err) {
        // Metadata only (a name, an activity time): the next event refreshes it.
        if (!storageProblem(err)) throw err;
        logger.warn({ err, jid: chat.jid }, 'chat metadata not stored');
      }
    },
    onConnectionChange: (connected) => {
      if (connected) outbox.kick();
    },
  };
  channels.push(...deps.makeChannels(events));

  let retentionTimer: NodeJS.Timeout | null = null;
  const pruneMessages = (): void => {
    const cutoffMs = now() - config.messageRetentionDays * DAY_MS;
    try {
      const removed = store.pruneMessages(cutoffMs);
      // Delivered replies are message bodies too: they age out with the messages.
      const delivered = store.pruneOutbound(cutoffMs);
      // Files go with their messages: a day's media folder once the whole day is past retention.
      const mediaDays =
        pruneMedia(config.paths.groupsDir, cutoffMs) + pruneDayDirs(outboundFilesDir(config), cutoffMs);
      if (removed + delivered + mediaDays > 0)
        logger.info({ removed, delivered, mediaDays }, 'old messages pruned');
    } catch (err) {
      // A full disk can refuse even a delete (the WAL grows first): retention waits for the next day.
      if (storageProblem(err) !== 'full') throw err;
      logger.warn({ err }, 'old messages not pruned: the disk is full');
    }
  };

  return {
    store,
    router,
    scheduler,
    outbox,
    queue: workQueue,
    channels,
    tools,
    async start() {
      pruneMessages();
      retentionTimer = setInterval(pruneMessages, DAY_MS);
      retentionTimer.unref();
      // Before any channel speaks: what the last host accepted but never stored goes first.
      const journaled = media.recover();
      if (journaled > 0)
        logger.warn(
          { messages: journaled },
          'stored messages whose files were still downloading at the last stop',
        );
      for (const channel of channels) {
        try {
          await channel.connect();
        } catch (err) {
          logger.error({ channel: channel.name, err: String(err) }, 'channel failed to connect');
        }
      }
      const recovered = router.recover();
      if (recovered > 0) logger.info({ groups: recovered }, 'recovered unprocessed messages');
      scheduler.start();
      outbox.kick();
    },
    async settled() {
      for (;;) {
        await media.idle();
        await workQueue.onSettled();
        await router.liveRunsDone();
        await outbox.drained();
        const queueQuiet =
          workQueue.activeCount() === 0 && workQueue.pendingCount() === 0 && workQueue.retryingCount() === 0;
        if (queueQuiet && router.liveRunCount() === 0) return;
      }
    },
    async stop() {
      router.stopAccepting();
      scheduler.stop();
      const queueStopped = workQueue.stop();
      router.closeLiveRuns();
      const graceful = await Promise.race([
        Promise.all([router.liveRunsDone(), queueStopped]).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), config.shutdownGraceMs).unref()),
      ]);
      if (!graceful) {
        logger.warn({ graceMs: config.shutdownGraceMs }, 'runs did not finish in time; killing them');
        router.killLiveRuns('host shutdown');
        await router.liveRunsDone();
      }
      await outbox.drained();
      // Files still downloading get the grace too; a message that misses it is logged, not stored.
      await Promise.race([
        media.idle(),
        new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref()),
      ]);
      outbox.stop();
      if (retentionTimer) clearInterval(retentionTimer);
      for (const channel of channels) await channel.disconnect().catch(() => undefined);
      store.close();
    },
  };
}
