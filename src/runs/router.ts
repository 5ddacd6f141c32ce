// From channel event to agent run (SPEC §2, §4, §6.7). Stores every event first,
// decides whether a group wakes, and turns queue work into runs: message runs
// move the group's cursor (rolled back on a silent failure), task runs report to
// the scheduler. Follow-ups go to a group's live message run instead of a new one.

import type { Logger } from '../core/logger.js';
import { formatPrompt } from '../core/prompt.js';
import { anyWakes, shouldWake } from '../core/trigger.js';
import type { Group, InboundMessage, Task } from '../core/types.js';
import type { StoreApi } from '../store/api.js';
import type { Outbox } from './outbox.js';
import type { AgentRuns, LiveRun, RunOutcome } from './types.js';

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
  onTaskFinished: (taskId: string, finish: TaskFinish) => void;
  /** Most messages put into one prompt; older ones stay for the next run. */
  maxPromptMessages?: number;
  /** Called when a group starts or stops working on messages (typing indicator). */
  onBusyChange?: (chatJid: string, busy: boolean) => void;
}

interface LiveEntry {
  run: LiveRun;
  kind: 'messages' | 'task';
  /** Prompts given to the run that it has not answered yet; 0 means idle, waiting for follow-ups. */
  unansweredTurns: number;
}

export class Router {
  private readonly options: RouterOptions;
  readonly queue: WorkQueue;
  private readonly live = new Map<string, LiveEntry>();
  private readonly lastErrors = new Map<string, string>();
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
   * (SPEC §2.1); only registered chats keep bodies (§2.2).
   */
  handleInbound(message: InboundMessage, channelName: string): void {
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
    if (!shouldWake(group, stored.text)) return;

    const entry = this.live.get(group.jid);
    if (entry && entry.kind === 'messages' && this.pipeToLiveRun(group, entry)) return;
    this.queue.enqueueMessages(group.jid);
    this.yieldIdleRuns();
  }

  /**
   * A run idling for follow-ups holds a slot (and memory) for up to the idle
   * timeout. When other work is waiting — another group's, or a task of the
   * same group — idle runs are asked to finish so that work starts now.
   */
  private yieldIdleRuns(): void {
    if (this.queue.pendingCount() === 0) return;
    for (const entry of this.live.values()) {
      if (entry.kind === 'messages' && entry.unansweredTurns === 0) entry.run.close();
    }
  }

  /** SPEC §2.8: every message since the cursor goes to the live run at once. */
  private pipeToLiveRun(group: Group, entry: LiveEntry): boolean {
    const { store } = this.options;
    const messages = store.messagesSince(group.jid, store.getCursor(group.jid), this.maxPromptMessages());
    if (messages.length === 0) return true;
    if (!entry.run.send(formatPrompt(messages))) return false;
    entry.unansweredTurns++;
    this.options.onBusyChange?.(group.jid, true);
    store.setCursor(group.jid, messages[messages.length - 1].seq);
    return true;
  }

  /** SPEC §6: the scheduler offers a due task. */
  offerTask(task: Task): boolean {
    if (!this.accepting) return false;
    const group = this.options.store.getGroupByFolder(task.groupFolder);
    if (!group) return false;
    const accepted = this.queue.enqueueTask(group.jid, task.id);
    this.yieldIdleRuns();
    return accepted;
  }

  /** SPEC §4.4: enqueue every group whose cursor is behind its newest message. */
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

  private async execute(groupJid: string, work: Work): Promise<WorkResult> {
    try {
      return work.kind === 'messages'
        ? await this.runMessages(groupJid)
        : await this.runTask(groupJid, work.taskId);
    } catch (err) {
      this.options.logger.error({ groupJid, err: String(err) }, 'work failed unexpectedly');
      return { ok: false, retry: work.kind === 'messages' };
    }
  }

  private async runMessages(groupJid: string): Promise<WorkResult> {
    const { store, runs, outbox, logger } = this.options;
    const group = store.getGroupByJid(groupJid);
    if (!group) return { ok: true };
    const previousCursor = store.getCursor(groupJid);
    const messages = store.messagesSince(groupJid, previousCursor, this.maxPromptMessages());
    if (messages.length === 0 || !anyWakes(group, messages)) return { ok: true };

    store.setCursor(groupJid, messages[messages.length - 1].seq);
    let sentSomething = false;
    const run = runs.start(
      { group, prompt: formatPrompt(messages), sessionId: store.getSession(group.folder) },
      {
        onOutput: (text) => {
          if (outbox.enqueue(groupJid, text).length > 0) sentSomething = true;
        },
        onTurnEnd: () => {
          const entry = this.live.get(groupJid);
          if (!entry || entry.run !== run) return;
          entry.unansweredTurns = Math.max(0, entry.unansweredTurns - 1);
          if (entry.unansweredTurns > 0) return;
          this.options.onBusyChange?.(groupJid, false);
          this.yieldIdleRuns();
        },
        onSessionId: (sessionId) => store.setSession(group.folder, sessionId),
      },
    );
    if (this.closeAfterTurn) run.close();
    const outcome = await this.track(group, { run, kind: 'messages', unansweredTurns: 1 });

    if (outcome.ok) {
      this.lastErrors.delete(groupJid);
      // More messages may have arrived after the run stopped taking input.
      this.recoverGroup(group);
      return { ok: true };
    }
    const error = outcome.error ?? 'unknown error';
    this.lastErrors.set(groupJid, error);
    if (outcome.refusedToStart) {
      // Configuration problems do not fix themselves by retrying: say so once.
      store.setCursor(groupJid, previousCursor);
      this.notify(groupJid, `I couldn't start: ${error}`);
      logger.error({ group: group.folder, error }, 'run refused to start');
      return { ok: false, retry: false };
    }
    if (sentSomething) {
      // SPEC §4.3: the user already has a reply; re-running would duplicate it.
      logger.warn({ group: group.folder, error }, 'run failed after sending output; not retried');
      return { ok: false, retry: false };
    }
    store.setCursor(groupJid, previousCursor);
    logger.warn({ group: group.folder, error }, 'run failed; cursor rolled back for retry');
    return { ok: false, retry: true };
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
    const { store, runs, outbox, now } = this.options;
    const task = store.getTask(taskId);
    const group = store.getGroupByJid(groupJid);
    const startedAtMs = now();
    if (!task || task.status !== 'active') {
      // Paused or cancelled while queued: the scheduler still has it in flight.
      this.options.onTaskFinished(taskId, {
        status: 'error',
        error: 'not run: paused or cancelled while queued',
        startedAtMs,
      });
      return { ok: true };
    }
    if (!group) {
      this.options.onTaskFinished(taskId, { status: 'error', error: 'group is not registered', startedAtMs });
      return { ok: true };
    }
    let lastOutput: string | undefined;
    const isolated = task.contextMode === 'isolated';
    const run = runs.start(
      {
        group,
        prompt: task.prompt,
        sessionId: isolated ? undefined : store.getSession(group.folder),
        task: { id: task.id, contextMode: task.contextMode },
      },
      {
        onOutput: (text) => {
          lastOutput = text;
          outbox.enqueue(task.chatJid, text);
        },
        onSessionId: (sessionId) => {
          if (!isolated) store.setSession(group.folder, sessionId);
        },
      },
    );
    // The runs layer closes a task run after its first answer (no follow-ups).
    const outcome = await this.track(group, { run, kind: 'task', unansweredTurns: 1 });
    if (outcome.ok) {
      this.options.onTaskFinished(taskId, { status: 'success', result: lastOutput, startedAtMs });
    } else {
      const error = outcome.error ?? 'unknown error';
      this.options.onTaskFinished(taskId, { status: 'error', error, result: lastOutput, startedAtMs });
      this.notify(task.chatJid, `Scheduled task ${task.id} failed: ${error}`);
    }
    return { ok: true };
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

  /** SPEC §4.5: the last retry failed; tell the chat once. */
  private onRetriesExhausted(groupJid: string): void {
    const error = this.lastErrors.get(groupJid) ?? 'unknown error';
    this.notify(
      groupJid,
      `Sorry, I couldn't process your last messages after several tries (${error}). ` +
        `I'll try again when you send another message. The owner can see details with "nanoclaw doctor" and the log.`,
    );
  }

  private notify(chatJid: string, text: string): void {
    this.options.outbox.enqueue(chatJid, text);
  }
}
