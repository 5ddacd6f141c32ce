// From channel event to agent run (SPEC §2, §4, §6.7). Stores every event first,
// decides whether a group wakes, and turns queue work into runs.
//
// Exactly once (SPEC §4.1): a group's cursor is the last message that is done,
// and it moves only in the transaction that stores the answer (or the failure
// notice) of the turn that held it. A live run's turns are tracked in memory;
// whatever is past the cursor when the host dies is simply re-run at start-up,
// and an answer already in the outbox is never produced again. A task run
// likewise moves its schedule in the transaction that stores its answer.

import path from 'node:path';
import { modelTroubleNotice } from '../broker/model-errors.js';
import type { Logger } from '../core/logger.js';
import { boundedPrompt, formatTaskPrompt, type PromptView } from '../core/prompt.js';
import { anyWakes, shouldWake } from '../core/trigger.js';
import type { Group, InboundMessage, StoredMessage, Task } from '../core/types.js';
import type { StoreApi } from '../store/api.js';
import { storageProblem } from '../store/errors.js';
import { writeFileAtomic } from './files.js';
import type { Outbox } from './outbox.js';
import type { AgentRuns, LiveRun, RunModelError, RunOutcome, RunStopReason } from './types.js';

export type Work = { kind: 'messages' } | { kind: 'task'; taskId: string };
export type WorkResult = { ok: boolean; retry?: boolean };

/** The part of the queue the router drives. */
export interface WorkQueue {
  enqueueMessages(groupJid: string): void;
  enqueueTask(groupJid: string, taskId: string): boolean;
  /** Units waiting for a slot or for their group's current run. */
  pendingCount(): number;
}

export interface TaskFinish {
  status: 'success' | 'error';
  result?: string;
  error?: string;
  startedAtMs: number;
}

/** What the router tells the scheduler; `record` only writes SQLite (it runs inside the answer's transaction). */
export interface TaskEvents {
  /** Logs the run and moves the task's schedule: SQLite writes only. */
  record(taskId: string, finish: TaskFinish): void;
  /** The run is over (after `record` committed, or interrupted without it): re-arm. */
  release(taskId: string): void;
}

export interface RouterOptions {
  store: StoreApi;
  runs: AgentRuns;
  outbox: Outbox;
  logger: Logger;
  now: () => number;
  /** Builds the queue around the router's work functions (the queue calls back into the router). */
  makeQueue: (
    execute: (groupJid: string, work: Work) => Promise<WorkResult>,
    onRetriesExhausted: (groupJid: string) => void,
  ) => WorkQueue;
  tasks: TaskEvents;
  /** The context header and local times of a group's prompts; without it, none and stored (UTC) times. */
  promptView?: (group: Group) => PromptView;
  /** Where group folders live: a cut message's full text is saved in its group's folder. */
  groupsDir: string;
  /** Most messages put into one prompt; older ones stay for the next run. */
  maxPromptMessages?: number;
  maxPromptBytes?: number;
  maxMessageBytes?: number;
  /** Free bytes on the data dir's disk; below `minFreeDiskBytes` no new run starts. */
  freeDiskBytes?: () => number;
  minFreeDiskBytes?: number;
  /** How long a held inbound event (storage failed) waits before it is written again. */
  storageRetryMs?: number;
  /** Called when a group starts or stops working on messages (typing indicator). */
  onBusyChange?: (chatJid: string, busy: boolean) => void;
  /** Storage trouble or a low disk, for the owner (log + audit); null when it is over. */
  onStorageTrouble?: (problem: string | null) => void;
}

/** One prompt given to a live run: done once its answer (or its silent end) is committed. */
interface Turn {
  /** The newest message seq in this turn's prompt. */
  uptoSeq: number;
  answered: boolean;
}

interface TurnProgress {
  /** Prompts given to the run that it has not finished yet; empty means idle, waiting for follow-ups. */
  turns: Turn[];
  /** Newest message seq given to the run (cursor plus what is in flight). */
  sentSeq: number;
  /** Whether any answer of this run had text for the chat. */
  saidSomething?: boolean;
}

interface LiveEntry {
  run: LiveRun;
  kind: 'messages' | 'task';
  progress: TurnProgress;
}

/** Limits a retry would only hit again. */
const UNRETRYABLE_STOPS: ReadonlySet<RunStopReason> = new Set(['wall_time', 'disk_quota']);

/** Where a cut message's full text is kept, relative to the group folder (the agent's working directory). */
export function fullTextPath(message: Pick<StoredMessage, 'seq'>): string {
  return `inbox/message-${message.seq}.txt`;
}

export class Router {
  private readonly options: RouterOptions;
  readonly queue: WorkQueue;
  private readonly live = new Map<string, LiveEntry>();
  private readonly lastErrors = new Map<string, string>();
  /** The newest message seq of each group's last failed attempt: what a retries-exhausted notice covers. */
  private readonly lastAttemptSeq = new Map<string, number>();
  /**
   * Chats told that the model is in trouble and the assistant keeps trying: one
   * notice per outage, across the tries and runs of the same backlog, until the
   * model answers the chat again (or the final notice goes out).
   */
  private readonly troubleNoticed = new Set<string>();
  /** Channel events that could not be stored (disk full), oldest first; written again later. */
  private readonly heldInbound: Array<{ message: InboundMessage; channelName: string }> = [];
  private heldTimer: NodeJS.Timeout | null = null;
  private diskTimer: NodeJS.Timeout | null = null;
  private accepting = true;
  private closeAfterTurn = false;

  constructor(options: RouterOptions) {
    this.options = options;
    this.queue = options.makeQueue(
      (jid, work) => this.execute(jid, work),
      (jid) => this.onRetriesExhausted(jid),
    );
  }

  /**
   * A channel event. Written to SQLite synchronously before anything else
   * (SPEC §2.1); only registered chats keep bodies (§2.2). A storage failure
   * never reaches the channel: the event is held in memory and written later.
   */
  handleInbound(message: InboundMessage, channelName: string): void {
    if (this.heldInbound.length > 0) {
      // Keep arrival order: nothing overtakes an event that is waiting for storage.
      this.holdInbound(message, channelName);
      return;
    }
    try {
      this.ingest(message, channelName);
    } catch (err) {
      if (!storageProblem(err)) throw err;
      this.options.logger.error({ err, chatJid: message.chatJid }, 'could not store a message; holding it');
      this.options.onStorageTrouble?.(storageProblem(err));
      this.holdInbound(message, channelName);
    }
  }

  private ingest(message: InboundMessage, channelName: string): void {
    const { store } = this.options;
    store.upsertChat({
      jid: message.chatJid,
      name: message.chatName ?? null,
      channel: channelName,
      timestamp: message.timestamp,
    });
    const group = store.getGroupByJid(message.chatJid);
    if (!group) return;
    const stored = store.insertMessage(message);
    if (!stored || stored.isBotMessage) return;
    if (!this.accepting) return; // stored; start-up recovery picks it up
    if (!shouldWake(group, stored)) return;

    const entry = this.live.get(group.jid);
    if (entry && entry.kind === 'messages' && this.pipeToLiveRun(group, entry)) return;
    this.queue.enqueueMessages(group.jid);
    this.yieldIdleRuns();
  }

  /** Bounded: past this many held events the newest are refused (logged), the rest are kept. */
  private static readonly MAX_HELD_INBOUND = 10_000;

  private holdInbound(message: InboundMessage, channelName: string): void {
    if (this.heldInbound.length >= Router.MAX_HELD_INBOUND) {
      this.options.logger.error(
        { chatJid: message.chatJid },
        'storage is down and too many events are held; event dropped',
      );
      return;
    }
    this.heldInbound.push({ message, channelName });
    if (this.heldTimer) return;
    this.heldTimer = setTimeout(() => this.writeHeldInbound(), this.options.storageRetryMs ?? 2000);
    this.heldTimer.unref?.();
  }

  private writeHeldInbound(): void {
    this.heldTimer = null;
    while (this.heldInbound.length > 0) {
      const { message, channelName } = this.heldInbound[0];
      try {
        this.ingest(message, channelName);
      } catch (err) {
        if (!storageProblem(err)) {
          this.heldInbound.shift();
          this.options.logger.error({ err, chatJid: message.chatJid }, 'held message could not be handled');
          continue;
        }
        this.heldTimer = setTimeout(() => this.writeHeldInbound(), this.options.storageRetryMs ?? 2000);
        this.heldTimer.unref?.();
        return;
      }
      this.heldInbound.shift();
    }
    this.options.logger.info('storage is back; held messages are stored');
    this.options.onStorageTrouble?.(null);
  }

  /** Channel events waiting for storage to come back. */
  heldInboundCount(): number {
    return this.heldInbound.length;
  }

  /**
   * A run idling for follow-ups holds a slot (and memory) for up to the idle
   * timeout. When other work is waiting — another group's, or a task of the
   * same group — idle runs are asked to finish so that work starts now.
   */
  private yieldIdleRuns(): void {
    if (this.queue.pendingCount() === 0) return;
    for (const entry of this.live.values()) {
      if (entry.kind === 'messages' && entry.progress.turns.length === 0) entry.run.close();
    }
  }

  /** SPEC §2.8: every message not yet given to the live run goes to it at once, as a new turn. */
  private pipeToLiveRun(group: Group, entry: LiveEntry): boolean {
    const { progress } = entry;
    // Mid-turn, Claude Code folds a queued prompt into the turn it is working on and answers
    // both at once; the host could then not tell which messages an answer covers. So a
    // follow-up waits (stored) for the current turn to end and goes in as the next turn.
    if (progress.turns.length > 0) return true;
    const messages = this.options.store.messagesSince(group.jid, progress.sentSeq, this.maxPromptMessages());
    if (messages.length === 0) return true;
    const prompt = this.promptFor(group, messages);
    if (prompt === null || !entry.run.send(prompt)) return false;
    const uptoSeq = messages[messages.length - 1].seq;
    progress.turns.push({ uptoSeq, answered: false });
    progress.sentSeq = uptoSeq;
    this.options.onBusyChange?.(group.jid, true);
    return true;
  }

  /** Pipes stored messages the live run has not seen yet, if any would wake it; true when it did. */
  private pipeWaiting(group: Group, entry: LiveEntry): boolean {
    const waiting = this.options.store.messagesSince(
      group.jid,
      entry.progress.sentSeq,
      this.maxPromptMessages(),
    );
    if (waiting.length === 0 || !anyWakes(group, waiting)) return false;
    return this.pipeToLiveRun(group, entry) && entry.progress.turns.length > 0;
  }

  /** SPEC §6: the scheduler offers a due task. */
  offerTask(task: Task): boolean {
    if (!this.accepting || this.diskIsLow()) return false;
    const group = this.options.store.getGroupByFolder(task.groupFolder);
    if (!group) return false;
    const accepted = this.queue.enqueueTask(group.jid, task.id);
    this.yieldIdleRuns();
    return accepted;
  }

  /** SPEC §4.4: enqueue every group with messages past its cursor (not done) that would wake it. */
  recover(): number {
    const { store } = this.options;
    let count = 0;
    for (const group of store.listGroups()) if (this.recoverGroup(group)) count++;
    return count;
  }

  liveRunCount(): number {
    return this.live.size;
  }

  /** Stops taking new work (shutdown): messages stay stored for the next start. */
  stopAccepting(): void {
    this.accepting = false;
    if (this.diskTimer) clearTimeout(this.diskTimer);
    this.diskTimer = null;
  }

  /**
   * From now on every run is closed after its current turn, and live ones are
   * asked to finish: used when input has ended (`chat --json`) so nothing waits
   * for the idle timeout.
   */
  finishAfterCurrentTurns(): void {
    this.closeAfterTurn = true;
    this.closeLiveRuns();
  }

  /** Asks every live run to finish after its current turn. */
  closeLiveRuns(): void {
    for (const entry of this.live.values()) entry.run.close();
  }

  killLiveRuns(reason: string): void {
    for (const entry of this.live.values()) entry.run.kill(reason);
  }

  /** Resolves when no run is live. */
  async liveRunsDone(): Promise<void> {
    while (this.live.size > 0) {
      await Promise.allSettled([...this.live.values()].map((entry) => entry.run.done));
    }
  }

  private maxPromptMessages(): number {
    return this.options.maxPromptMessages ?? 200;
  }

  /**
   * The bounded prompt for these messages; cut messages' full texts are saved
   * first (null when that fails: the messages stay undone and are retried).
   */
  private promptFor(group: Group, messages: StoredMessage[]): string | null {
    const maxPromptBytes = this.options.maxPromptBytes ?? 96 * 1024;
    const bounded = boundedPrompt(
      messages,
      {
        maxPromptBytes,
        maxMessageBytes: Math.min(this.options.maxMessageBytes ?? 16 * 1024, Math.floor(maxPromptBytes / 2)),
        fullTextPath,
      },
      this.options.promptView?.(group),
    );
    try {
      for (const message of bounded.cut) {
        writeFileAtomic(path.join(this.options.groupsDir, group.folder, fullTextPath(message)), message.text);
      }
    } catch (err) {
      this.options.logger.error(
        { err, group: group.folder },
        'could not save a long message to the group folder',
      );
      return null;
    }
    if (bounded.omitted > 0 || bounded.cut.length > 0) {
      this.options.logger.info(
        { group: group.folder, omitted: bounded.omitted, cut: bounded.cut.length },
        'prompt bounded',
      );
    }
    return bounded.prompt;
  }

  /** Below the free-space reserve no run starts; a coarse timer checks again (only while low). */
  private diskIsLow(): boolean {
    const { freeDiskBytes, minFreeDiskBytes } = this.options;
    if (!freeDiskBytes || !minFreeDiskBytes) return false;
    let free: number;
    try {
      free = freeDiskBytes();
    } catch {
      return false; // cannot tell: do not block work on a failed statfs
    }
    if (free >= minFreeDiskBytes) return false;
    if (!this.diskTimer && this.accepting) {
      this.options.logger.error(
        { freeBytes: free, reserveBytes: minFreeDiskBytes },
        'disk almost full: new runs wait',
      );
      this.options.onStorageTrouble?.('disk_low');
      this.diskTimer = setTimeout(() => this.diskCheck(), 10_000);
      this.diskTimer.unref?.();
    }
    return true;
  }

  private diskCheck(): void {
    this.diskTimer = null;
    if (this.diskIsLow()) return;
    this.options.logger.info('disk has room again: resuming runs');
    this.options.onStorageTrouble?.(null);
    this.recover();
  }

  private async execute(groupJid: string, work: Work): Promise<WorkResult> {
    try {
      return work.kind === 'messages'
        ? await this.runMessages(groupJid)
        : await this.runTask(groupJid, work.taskId);
    } catch (err) {
      this.options.logger.error({ groupJid, err }, 'work failed unexpectedly');
      return { ok: false, retry: work.kind === 'messages' };
    }
  }

  /** Stores the answer and marks its turn done, in one transaction. */
  private commitTurn(groupJid: string, turn: Turn, text: string | null): void {
    const { store, outbox } = this.options;
    turn.answered = true;
    outbox.commitAnswer(groupJid, text, () => store.advanceCursor(groupJid, turn.uptoSeq));
  }

  private async runMessages(groupJid: string): Promise<WorkResult> {
    const { store, runs, logger } = this.options;
    const group = store.getGroupByJid(groupJid);
    if (!group) return { ok: true };
    const messages = store.messagesSince(groupJid, store.getCursor(groupJid), this.maxPromptMessages());
    if (messages.length === 0 || !anyWakes(group, messages)) return { ok: true };
    // Waiting for disk is not a failure: no retry is spent, the disk check re-queues the group.
    if (this.diskIsLow()) return { ok: true };
    const prompt = this.promptFor(group, messages);
    if (prompt === null) return { ok: false, retry: true };

    const uptoSeq = messages[messages.length - 1].seq;
    const progress: TurnProgress = { turns: [{ uptoSeq, answered: false }], sentSeq: uptoSeq };
    const run = runs.start(
      { group, prompt, sessionId: store.getSession(group.folder) },
      {
        onOutput: (text) => {
          // The model answered this chat: an outage it was told of is over.
          this.troubleNoticed.delete(groupJid);
          // One output line ends one turn; turns are answered in the order they were given.
          if (text.trim() !== '') progress.saidSomething = true;
          const turn = progress.turns.find((t) => !t.answered);
          if (turn) this.commitTurn(groupJid, turn, text);
          else this.options.outbox.commitAnswer(groupJid, text, () => undefined);
        },
        onTurnEnd: () => {
          const turn = progress.turns.shift();
          // A turn that ended without text is done too (the agent chose to stay silent).
          if (turn && !turn.answered) this.commitTurn(groupJid, turn, null);
          const entry = this.live.get(groupJid);
          if (entry?.progress !== progress || progress.turns.length > 0) return;
          // Follow-ups that arrived during the turn go in now, together, as the next turn.
          if (this.accepting && this.pipeWaiting(group, entry)) return;
          this.options.onBusyChange?.(groupJid, false);
          this.yieldIdleRuns();
        },
        onSessionId: (sessionId) => this.saveSession(group.folder, sessionId),
        onModelTrouble: (modelError) => this.noticeModelTrouble(group, progress, modelError),
      },
    );
    if (this.closeAfterTurn) run.close();
    const outcome = await this.track(group, { run, kind: 'messages', progress });

    if (outcome.ok) {
      this.lastErrors.delete(groupJid);
      this.lastAttemptSeq.delete(groupJid);
      this.troubleNoticed.delete(groupJid);
      // A clean end means the runner consumed every prompt it was given (turns may
      // merge into one answer): all of it is done, after any answer still held.
      this.options.outbox.commitAnswer(
        groupJid,
        null,
        () => store.advanceCursor(groupJid, progress.sentSeq),
        () => this.recoverGroup(group),
      );
      return { ok: true };
    }
    const error = outcome.error ?? 'unknown error';
    if (!this.accepting) {
      // Shutdown cut it short: what was not answered is re-run at the next start.
      logger.info(
        { group: group.folder },
        'run interrupted by shutdown; unanswered messages wait for the next start',
      );
      return { ok: true };
    }
    this.lastErrors.set(groupJid, error);
    this.lastAttemptSeq.set(groupJid, progress.sentSeq);
    if (outcome.refusedToStart) {
      // Configuration problems do not fix themselves by retrying: say so once. The messages
      // stay undone, so once the owner fixes the cause they are answered (next message or start).
      this.options.outbox.commitAnswer(groupJid, `I couldn't start: ${error}`, () => undefined);
      logger.error({ group: group.folder, error }, 'run refused to start');
      return { ok: false, retry: false };
    }
    if (outcome.modelError && !outcome.modelError.retryable) {
      // The broker saw the model refuse (key, billing, bad request, unknown model): asking again
      // gets the same answer, so the chat hears the cause now, and it answers the messages.
      logger.warn(
        { group: group.folder, error, modelError: outcome.modelError.class },
        'model refused the run; not retried',
      );
      this.troubleNoticed.delete(groupJid);
      this.notifyAndComplete(
        groupJid,
        progress.sentSeq,
        `Sorry, I couldn't answer: ${outcome.modelError.message}.`,
      );
      return { ok: false, retry: false };
    }
    if (outcome.stoppedBy && UNRETRYABLE_STOPS.has(outcome.stoppedBy)) {
      // The same prompt would hit the same limit again: say why at once (SPEC §4.5), and the
      // notice answers the unanswered messages, so the chat is not stuck on them.
      logger.warn(
        { group: group.folder, error, stoppedBy: outcome.stoppedBy },
        'run stopped by a limit; not retried',
      );
      this.notifyAndComplete(
        groupJid,
        progress.sentSeq,
        `Sorry, I couldn't process your last messages (${error}); trying again would hit the same limit. ` +
          `The owner can see details with "nanoclaw doctor" and the log.`,
      );
      return { ok: false, retry: false };
    }
    if (progress.turns.length === 0) {
      // Every turn was answered before it failed: nothing to retry (SPEC §4.3). But a
      // failure never goes unseen: when none of those answers said anything, say why.
      logger.warn({ group: group.folder, error }, 'run failed after answering everything; not retried');
      if (!progress.saidSomething) {
        this.options.outbox.commitAnswer(
          groupJid,
          `Sorry, I couldn't process your last messages (${error}). The owner can see details with "nanoclaw doctor" and the log.`,
          () => undefined,
        );
      }
      this.recoverGroup(group);
      return { ok: true };
    }
    // SPEC §4.3: answered turns are committed; only the unanswered ones are retried.
    logger.warn(
      { group: group.folder, error, unansweredTurns: progress.turns.length },
      'run failed; unanswered messages will be retried',
    );
    // SPEC §4.5: a model failure that passes with time is told after the first failed try
    // (when the run did not already say it while it lasted).
    if (outcome.modelError?.retryable) this.noticeModelTrouble(group, progress, outcome.modelError);
    return { ok: false, retry: true };
  }

  /**
   * SPEC §4.5: the model is failing with a cause that passes with time, and the
   * chat is waiting: it hears so once, while the tries go on. The notice is not
   * the answer (SPEC §4.1): no cursor moves with it, so the messages stay undone
   * until the real answer (or the final notice) is stored.
   */
  private noticeModelTrouble(group: Group, progress: TurnProgress, error: RunModelError): void {
    if (!this.accepting || progress.turns.length === 0 || this.troubleNoticed.has(group.jid)) return;
    this.troubleNoticed.add(group.jid);
    this.options.logger.warn(
      { group: group.folder, modelError: error.class },
      'model in trouble; the chat is told that the assistant keeps trying',
    );
    this.options.outbox.commitAnswer(group.jid, modelTroubleNotice(error), () => undefined);
  }

  /** Enqueues the group when messages past its cursor would wake it; true when it did. */
  private recoverGroup(group: Group): boolean {
    const { store } = this.options;
    const cursor = store.getCursor(group.jid);
    if (store.latestSeq(group.jid) <= cursor) return false;
    const pending = store.messagesSince(group.jid, cursor, this.maxPromptMessages());
    if (!anyWakes(group, pending)) return false;
    this.queue.enqueueMessages(group.jid);
    return true;
  }

  private async runTask(groupJid: string, taskId: string): Promise<WorkResult> {
    const { store, runs, now, tasks } = this.options;
    const task = store.getTask(taskId);
    const group = store.getGroupByJid(groupJid);
    const startedAtMs = now();
    if (!task || task.status !== 'active') {
      // Paused or cancelled while queued: the scheduler still has it in flight.
      tasks.record(taskId, {
        status: 'error',
        error: 'not run: paused or cancelled while queued',
        startedAtMs,
      });
      tasks.release(taskId);
      return { ok: true };
    }
    if (!group) {
      tasks.record(taskId, { status: 'error', error: 'group is not registered', startedAtMs });
      tasks.release(taskId);
      return { ok: true };
    }
    if (this.diskIsLow()) {
      tasks.release(taskId); // still due: offered again once the disk has room
      return { ok: true };
    }
    // The task is done once its answer is stored: the answer and the schedule's
    // next step commit together, so a crash can neither lose nor repeat it.
    let finished = false;
    const finish = (text: string | null, outcome: TaskFinish): void => {
      finished = true;
      this.options.outbox.commitAnswer(
        task.chatJid,
        text,
        () => tasks.record(taskId, outcome),
        () => tasks.release(taskId),
      );
    };
    const isolated = task.contextMode === 'isolated';
    const run = runs.start(
      {
        group,
        prompt: formatTaskPrompt(task, this.options.promptView?.(group)),
        sessionId: isolated ? undefined : store.getSession(group.folder),
        task: { id: task.id, contextMode: task.contextMode },
      },
      {
        onOutput: (text) => {
          if (!finished) finish(text, { status: 'success', result: text, startedAtMs });
          else this.options.outbox.commitAnswer(task.chatJid, text, () => undefined);
        },
        onTurnEnd: () => {
          if (!finished) finish(null, { status: 'success', startedAtMs });
        },
        onSessionId: (sessionId) => {
          if (!isolated) this.saveSession(group.folder, sessionId);
        },
      },
    );
    // The runs layer closes a task run after its first answer (no follow-ups).
    const outcome = await this.track(group, { run, kind: 'task', progress: { turns: [], sentSeq: 0 } });
    if (finished) return { ok: true };
    if (!this.accepting) {
      // SPEC §6.1: interrupted by shutdown, it runs again after start-up (it is still due).
      this.options.logger.info(
        { taskId },
        'task run interrupted by shutdown; it runs again at the next start',
      );
      tasks.release(taskId);
      return { ok: true };
    }
    const error = outcome.error ?? 'unknown error';
    finish(`Scheduled task ${task.id} failed: ${error}`, { status: 'error', error, startedAtMs });
    return { ok: true };
  }

  /** A lost session id costs context, not messages: storage trouble here must not fail the run. */
  private saveSession(folder: string, sessionId: string): void {
    try {
      this.options.store.setSession(folder, sessionId);
    } catch (err) {
      if (!storageProblem(err)) throw err;
      this.options.logger.warn(
        { err, group: folder },
        'session id not stored; the next run starts a new session',
      );
    }
  }

  private async track(group: Group, entry: LiveEntry): Promise<RunOutcome> {
    this.live.set(group.jid, entry);
    if (entry.kind === 'messages') this.options.onBusyChange?.(group.jid, true);
    try {
      return await entry.run.done;
    } finally {
      if (this.live.get(group.jid) === entry) this.live.delete(group.jid);
      if (entry.kind === 'messages') this.options.onBusyChange?.(group.jid, false);
    }
  }

  /**
   * SPEC §4.5: the last retry failed; tell the chat once. The notice is the
   * answer of those messages (SPEC §4.1): they are done, so the next message
   * starts fresh instead of dragging them along forever.
   */
  private onRetriesExhausted(groupJid: string): void {
    const error = this.lastErrors.get(groupJid) ?? 'unknown error';
    const uptoSeq = this.lastAttemptSeq.get(groupJid);
    // The final word on this outage: the next one is told again.
    this.troubleNoticed.delete(groupJid);
    const text =
      `Sorry, I couldn't process your last messages after several tries (${error}). ` +
      `Please send them again in a while. The owner can see details with "nanoclaw doctor" and the log.`;
    if (uptoSeq === undefined) this.options.outbox.commitAnswer(groupJid, text, () => undefined);
    else this.notifyAndComplete(groupJid, uptoSeq, text);
  }

  private notifyAndComplete(chatJid: string, uptoSeq: number, text: string): void {
    const { store, outbox } = this.options;
    outbox.commitAnswer(chatJid, text, () => store.advanceCursor(chatJid, uptoSeq));
  }
}
