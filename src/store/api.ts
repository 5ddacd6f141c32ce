// The Store's public surface. Everything that touches SQLite goes through this
// interface; the implementation lives beside it (`Store` in store.ts). Tests
// build their own Store on a temp file.

import type { AuditRecord, AuditSink, NewAuditRecord, AuditAction } from '../core/audit.js';
import type {
  ChatInfo,
  Group,
  InboundMessage,
  OutboxItem,
  StoredMessage,
  Task,
  TaskRunLog,
  TaskStatus,
  TokenUsage,
} from '../core/types.js';
import type { GroupSettingsUpdate } from './groups.js';

export interface NewTask {
  id: string;
  groupFolder: string;
  chatJid: string;
  prompt: string;
  scheduleType: Task['scheduleType'];
  scheduleValue: string;
  contextMode: Task['contextMode'];
  nextRunAt: number | null;
}

export type TaskUpdate = Partial<
  Pick<
    Task,
    | 'prompt'
    | 'scheduleType'
    | 'scheduleValue'
    | 'contextMode'
    | 'status'
    | 'nextRunAt'
    | 'lastRunAt'
    | 'lastResult'
  >
>;

export interface UsageRow {
  day: string; // YYYY-MM-DD (UTC)
  groupFolder: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  requests: number;
}

/** How a run ended: answered, failed, refused before it started, or cut off by a shutdown or crash. */
export type RunOutcomeKind = 'ok' | 'error' | 'refused' | 'interrupted';

export interface RunStart {
  runId: string;
  groupFolder: string;
  /** The scheduled task the run is for; null or absent for a messages run. */
  taskId?: string | null;
  startedAtMs: number;
}

export interface RunEnd {
  runId: string;
  endedAtMs: number;
  outcome: RunOutcomeKind;
  error?: string | null;
}

/** One run as `nanoclaw runs` shows it; tokens are summed from the usage rows of the run. */
export interface RunRecord {
  runId: string;
  groupFolder: string;
  taskId: string | null;
  startedAtMs: number;
  /** Null while the run is going. */
  endedAtMs: number | null;
  outcome: RunOutcomeKind | null;
  error: string | null;
  tokens: TokenUsage;
}

export interface StoreApi extends AuditSink {
  close(): void;
  /** Runs `fn` as one IMMEDIATE transaction: every write in it commits together or not at all. */
  transaction<T>(fn: () => T): T;

  // ---- chats and messages (SPEC §2) ----
  /** Upserts chat metadata; never lowers lastActivity. */
  upsertChat(chat: { jid: string; name?: string | null; channel: string; timestamp: string }): void;
  listChats(): ChatInfo[];
  /**
   * Stores a message of a registered chat and returns it with its sequence number,
   * or null when it was already stored (same chat + id) or has no text.
   * Also updates the chat's metadata. Callers must not call it for unregistered chats.
   */
  insertMessage(message: InboundMessage): StoredMessage | null;
  /** Messages of a chat with seq > afterSeq, oldest first, bot messages excluded, at most `limit`. */
  messagesSince(chatJid: string, afterSeq: number, limit?: number): StoredMessage[];
  /** Highest seq of non-bot messages in the chat, 0 if none. */
  latestSeq(chatJid: string): number;
  /** Deletes messages older than the cutoff (epoch ms); returns how many. */
  pruneMessages(olderThanMs: number): number;

  // ---- groups ----
  listGroups(): Group[];
  getGroupByJid(jid: string): Group | undefined;
  getGroupByFolder(folder: string): Group | undefined;
  /**
   * Throws a clear Error when the jid or folder is already taken. The group's
   * cursor starts at the chat's newest stored message: only messages that arrive
   * after registration are input (a re-registered chat's history is not replayed).
   */
  addGroup(group: Group): void;
  /** Removes the group row (and its cursor, session); keeps its files and messages. Returns false if absent. */
  removeGroup(jid: string): boolean;
  /**
   * Moves a group (and its tasks) to another chat id, keeping folder, session and
   * memory: the terminal's main becomes the WhatsApp self-chat once linked. The new
   * chat's earlier messages count as history. False if `fromJid` is not registered.
   */
  moveGroupChat(fromJid: string, toJid: string): boolean;

  // ---- per-group cursors and sessions ----
  getCursor(chatJid: string): number;
  setCursor(chatJid: string, seq: number): void;
  /** Moves the cursor forward to `seq`; never back (answers are committed in any order of retries). */
  advanceCursor(chatJid: string, seq: number): void;
  getSession(groupFolder: string): string | undefined;
  setSession(groupFolder: string, sessionId: string): void;
  clearSession(groupFolder: string): void;

  // ---- tasks (SPEC §6) ----
  createTask(task: NewTask): Task;
  getTask(id: string): Task | undefined;
  /** All tasks, or only those of one group folder. */
  listTasks(groupFolder?: string): Task[];
  /**
   * Undefined when there is no such task, or when `onlyIfStatus` is given and the
   * task is no longer in it (a state-machine step someone else already took).
   */
  updateTask(id: string, update: TaskUpdate, onlyIfStatus?: TaskStatus): Task | undefined;
  deleteTask(id: string): boolean;
  /** Active tasks with nextRunAt <= nowMs, earliest first. */
  dueTasks(nowMs: number): Task[];
  /** Earliest nextRunAt among active tasks, or null. */
  nextDueAt(): number | null;
  logTaskRun(run: Omit<TaskRunLog, 'id'>): void;
  taskRuns(taskId: string, limit?: number): TaskRunLog[];

  // ---- outbox (SPEC §3.4) ----
  /** Inserts the chunks in order, in one transaction; returns their ids. */
  enqueueOutbound(chatJid: string, chunks: string[], nowMs: number): number[];
  /** A file (absolute host path, sent from disk) with its caption; returns its id. */
  enqueueOutboundFile(
    chatJid: string,
    file: { path: string; type: string; caption: string },
    nowMs: number,
  ): number;
  /** Pending items whose nextAttemptAt <= nowMs, in insertion order (oldest first). */
  pendingOutbound(nowMs: number, limit?: number): OutboxItem[];
  /** Earliest nextAttemptAt among pending items, or null. */
  nextOutboundAttemptAt(): number | null;
  getOutbound(id: number): OutboxItem | undefined;
  markSent(id: number): void;
  markAttemptFailed(id: number, error: string, nextAttemptAt: number): void;
  markFailed(id: number, error: string): void;
  /** Deletes sent and failed items created before the cutoff (epoch ms); pending ones stay. */
  pruneOutbound(olderThanMs: number): number;

  // ---- audit (SPEC §10.8) ----
  audit(record: NewAuditRecord): void;
  listAudit(filter?: {
    sinceIso?: string;
    group?: string;
    action?: AuditAction;
    limit?: number;
  }): AuditRecord[];

  // ---- usage (SPEC §11) ----
  recordUsage(entry: {
    groupFolder: string;
    runId: string;
    taskId: string | null;
    usage: TokenUsage;
    atMs: number;
  }): void;
  /** Total tokens (input + output + cache write + cache read) used by a group on the UTC day of `atMs`. */
  tokensUsedOnDay(groupFolder: string, atMs: number): number;
  usageByDay(filter?: { sinceDay?: string; group?: string }): UsageRow[];
  /** Sum of usage rows for one run. */
  usageForRun(runId: string): TokenUsage;

  // ---- runs (`nanoclaw runs`) ----
  runStarted(start: RunStart): void;
  /** Ends an open run; false when no open run has that id (a second end changes nothing). */
  runEnded(end: RunEnd): boolean;
  /** Marks runs left open by a host that stopped without ending them; returns how many. */
  interruptOpenRuns(nowMs: number): number;
  /** Newest first, at most `limit` (default 50). */
  listRuns(filter?: { group?: string; limit?: number }): RunRecord[];

  // ---- groups' budget ----
  setDailyTokenBudget(groupFolder: string, tokens: number | null): void;
  /** Who may wake the group (SPEC §2.5); null lets everyone. Validated; unknown jid throws. */
  setAllowedSenders(jid: string, senders: readonly string[] | null): void;
  /** Trigger, trigger requirement and container config (mounts, run timeout); unknown jid throws. */
  updateGroupSettings(jid: string, update: GroupSettingsUpdate): Group;
}

export type { TaskStatus, GroupSettingsUpdate };
