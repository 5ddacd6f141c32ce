// The SQLite store: one Store object owns the Database and, through one module
// per table family, every prepared statement; nothing is kept at module level.
//
// Durability: WAL with `synchronous = NORMAL`. A committed transaction survives
// a crash or kill of the NanoClaw process (the WAL is written before commit
// returns). On power loss or an OS crash the last few commits may be rolled back
// (the WAL is not fsynced on every commit), but the database is never corrupted.
// That trade buys the ingest rate; FULL would fsync every message.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AuditAction, AuditRecord, NewAuditRecord } from '../core/audit.js';
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
import type { NewTask, RunEnd, RunRecord, RunStart, StoreApi, TaskUpdate, UsageRow } from './api.js';
import { asStoreError, storageProblem } from './errors.js';
import { AuditTable } from './audit.js';
import { GroupTables, type GroupSettingsUpdate } from './groups.js';
import { MessageTables } from './messages.js';
import { MIGRATIONS, migrate, type Migration } from './migrations.js';
import { OutboxTable } from './outbox.js';
import { RunsTable } from './runs.js';
import { TaskTables } from './tasks.js';
import { UsageTable } from './usage.js';

/** How long a statement waits for another process's write lock (e.g. the CLI) before failing. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

// Ingest tuning (measured with bench/store.ts). Each message commit appends every
// page it touches to the WAL, so small pages cut the bytes written per message
// (SQLite only honours this when it creates the file). Checkpoints fsync under
// NORMAL, so they run every ~16 MiB of WAL rather than SQLite's default ~4 MiB,
// and the WAL file is truncated back afterwards.
const PAGE_SIZE_BYTES = 1024;
const WAL_AUTOCHECKPOINT_PAGES = 16_384;
const WAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024;
// SQLite's page cache is memory the host keeps once filled, and better-sqlite3
// builds SQLite with a 16 MiB default: a host whose database outgrows that would
// creep towards +16 MiB RSS as it reads history. The kernel caches the file
// anyway; 2 MiB keeps the hot index pages (bench/store.ts ingest unchanged).
const PAGE_CACHE_KIB = 2048;

export interface OpenStoreOptions {
  /** Defaults to MIGRATIONS; tests pass another list to play an older or newer release. */
  migrations?: readonly Migration[];
  busyTimeoutMs?: number;
}

export interface StoreSettings {
  schemaVersion: number;
  journalMode: string;
  synchronous: string;
  foreignKeys: boolean;
  busyTimeoutMs: number;
}

const SYNCHRONOUS_NAMES: readonly string[] = ['off', 'normal', 'full', 'extra'];

export class Store implements StoreApi {
  private readonly messages: MessageTables;
  private readonly groups: GroupTables;
  private readonly tasks: TaskTables;
  private readonly outbox: OutboxTable;
  private readonly auditLog: AuditTable;
  private readonly usage: UsageTable;
  private readonly runs: RunsTable;

  /** Takes ownership of an open, fully migrated database; use openStore(). */
  constructor(
    private readonly db: Database.Database,
    readonly schemaVersion: number,
  ) {
    this.messages = new MessageTables(db);
    this.groups = new GroupTables(db);
    this.tasks = new TaskTables(db);
    this.outbox = new OutboxTable(db);
    this.auditLog = new AuditTable(db);
    this.usage = new UsageTable(db);
    this.runs = new RunsTable(db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** SQLite's quick_check: "ok", or the first problems it found (for `nanoclaw doctor`). */
  quickCheck(): string {
    const rows = this.db.pragma('quick_check(5)') as Array<{ quick_check: string }>;
    return rows.map((row) => row.quick_check).join('; ');
  }

  transaction<T>(fn: () => T): T {
    // IMMEDIATE: the write lock is taken up front, so the busy timeout applies
    // instead of a reader failing at once when it upgrades to a writer.
    return this.db.transaction(fn).immediate();
  }

  /** The connection's effective settings, for `nanoclaw doctor` and tests. */
  settings(): StoreSettings {
    return {
      schemaVersion: this.schemaVersion,
      journalMode: this.db.pragma('journal_mode', { simple: true }) as string,
      synchronous: SYNCHRONOUS_NAMES[this.db.pragma('synchronous', { simple: true }) as number] ?? 'unknown',
      foreignKeys: this.db.pragma('foreign_keys', { simple: true }) === 1,
      busyTimeoutMs: this.db.pragma('busy_timeout', { simple: true }) as number,
    };
  }

  // ---- chats and messages ----
  upsertChat(chat: { jid: string; name?: string | null; channel: string; timestamp: string }): void {
    this.messages.upsertChat(chat);
  }
  listChats(): ChatInfo[] {
    return this.messages.listChats();
  }
  insertMessage(message: InboundMessage): StoredMessage | null {
    return this.messages.insertMessage(message);
  }
  messagesSince(chatJid: string, afterSeq: number, limit?: number): StoredMessage[] {
    return this.messages.messagesSince(chatJid, afterSeq, limit);
  }
  latestSeq(chatJid: string): number {
    return this.messages.latestSeq(chatJid);
  }
  pruneMessages(olderThanMs: number): number {
    return this.messages.pruneMessages(olderThanMs);
  }

  // ---- groups, cursors, sessions ----
  listGroups(): Group[] {
    return this.groups.listGroups();
  }
  getGroupByJid(jid: string): Group | undefined {
    return this.groups.getGroupByJid(jid);
  }
  getGroupByFolder(folder: string): Group | undefined {
    return this.groups.getGroupByFolder(folder);
  }
  addGroup(group: Group): void {
    this.groups.addGroup(group);
  }
  removeGroup(jid: string): boolean {
    return this.groups.removeGroup(jid);
  }
  moveGroupChat(fromJid: string, toJid: string): boolean {
    return this.transaction(() => {
      const moved = this.groups.moveGroupChatUnlocked(fromJid, toJid);
      if (moved) this.tasks.moveChat(fromJid, toJid);
      return moved;
    });
  }
  getCursor(chatJid: string): number {
    return this.groups.getCursor(chatJid);
  }
  setCursor(chatJid: string, seq: number): void {
    this.groups.setCursor(chatJid, seq);
  }
  advanceCursor(chatJid: string, seq: number): void {
    this.groups.advanceCursor(chatJid, seq);
  }
  getSession(groupFolder: string): string | undefined {
    return this.groups.getSession(groupFolder);
  }
  setSession(groupFolder: string, sessionId: string): void {
    this.groups.setSession(groupFolder, sessionId);
  }
  clearSession(groupFolder: string): void {
    this.groups.clearSession(groupFolder);
  }
  setDailyTokenBudget(groupFolder: string, tokens: number | null): void {
    this.groups.setDailyTokenBudget(groupFolder, tokens);
  }

  updateGroupSettings(jid: string, update: GroupSettingsUpdate): Group {
    return this.groups.updateGroupSettings(jid, update);
  }

  setAllowedSenders(jid: string, senders: readonly string[] | null): void {
    this.groups.setAllowedSenders(jid, senders);
  }

  // ---- tasks ----
  createTask(task: NewTask): Task {
    return this.tasks.createTask(task);
  }
  getTask(id: string): Task | undefined {
    return this.tasks.getTask(id);
  }
  listTasks(groupFolder?: string): Task[] {
    return this.tasks.listTasks(groupFolder);
  }
  updateTask(id: string, update: TaskUpdate, onlyIfStatus?: TaskStatus): Task | undefined {
    return this.tasks.updateTask(id, update, onlyIfStatus);
  }
  deleteTask(id: string): boolean {
    return this.tasks.deleteTask(id);
  }
  dueTasks(nowMs: number): Task[] {
    return this.tasks.dueTasks(nowMs);
  }
  nextDueAt(): number | null {
    return this.tasks.nextDueAt();
  }
  logTaskRun(run: Omit<TaskRunLog, 'id'>): void {
    this.tasks.logTaskRun(run);
  }
  taskRuns(taskId: string, limit?: number): TaskRunLog[] {
    return this.tasks.taskRuns(taskId, limit);
  }

  // ---- outbox ----
  enqueueOutbound(chatJid: string, chunks: string[], nowMs: number): number[] {
    return this.outbox.enqueueOutbound(chatJid, chunks, nowMs);
  }

  enqueueOutboundFile(
    chatJid: string,
    file: { path: string; type: string; caption: string },
    nowMs: number,
  ): number {
    return this.outbox.enqueueOutboundFile(chatJid, file, nowMs);
  }
  pendingOutbound(nowMs: number, limit?: number): OutboxItem[] {
    return this.outbox.pendingOutbound(nowMs, limit);
  }
  nextOutboundAttemptAt(): number | null {
    return this.outbox.nextOutboundAttemptAt();
  }
  getOutbound(id: number): OutboxItem | undefined {
    return this.outbox.getOutbound(id);
  }
  markSent(id: number): void {
    this.outbox.markSent(id);
  }
  markAttemptFailed(id: number, error: string, nextAttemptAt: number): void {
    this.outbox.markAttemptFailed(id, error, nextAttemptAt);
  }
  markFailed(id: number, error: string): void {
    this.outbox.markFailed(id, error);
  }
  pruneOutbound(olderThanMs: number): number {
    return this.outbox.pruneOutbound(olderThanMs);
  }

  // ---- audit ----
  audit(record: NewAuditRecord): void {
    this.auditLog.audit(record);
  }
  listAudit(filter?: {
    sinceIso?: string;
    group?: string;
    action?: AuditAction;
    limit?: number;
  }): AuditRecord[] {
    return this.auditLog.listAudit(filter);
  }

  // ---- usage ----
  recordUsage(entry: {
    groupFolder: string;
    runId: string;
    taskId: string | null;
    usage: TokenUsage;
    atMs: number;
  }): void {
    this.usage.recordUsage(entry);
  }
  tokensUsedOnDay(groupFolder: string, atMs: number): number {
    return this.usage.tokensUsedOnDay(groupFolder, atMs);
  }
  usageByDay(filter?: { sinceDay?: string; group?: string }): UsageRow[] {
    return this.usage.usageByDay(filter);
  }
  usageForRun(runId: string): TokenUsage {
    return this.usage.usageForRun(runId);
  }

  // ---- runs ----
  runStarted(start: RunStart): void {
    this.runs.runStarted(start);
  }
  runEnded(end: RunEnd): boolean {
    return this.runs.runEnded(end);
  }
  interruptOpenRuns(nowMs: number): number {
    return this.runs.interruptOpenRuns(nowMs);
  }
  listRuns(filter?: { group?: string; limit?: number }): RunRecord[] {
    return this.runs.listRuns(filter);
  }
}

/**
 * Opens (creating if needed) the database at `dbPath`, migrates it, and returns
 * the Store. Throws StoreVersionError for a database newer than the code.
 */
export function openStore(dbPath: string, options: OpenStoreOptions = {}): Store {
  try {
    return openStoreUnchecked(dbPath, options);
  } catch (err) {
    // A raw SqliteError names no file and suggests nothing: say which file, what, and what to do.
    throw asStoreError(err, dbPath);
  }
}

function openStoreUnchecked(dbPath: string, options: OpenStoreOptions): Store {
  const inMemory = dbPath === ':memory:';
  let created = false;
  if (!inMemory) {
    // The database holds every message body; only the owner may list or read it. Only
    // its own directory is 0700: the home above it must stay passable for the sandbox user.
    fs.mkdirSync(path.dirname(path.dirname(dbPath)), { recursive: true });
    fs.mkdirSync(path.dirname(dbPath), { recursive: true, mode: 0o700 });
    created = !fs.existsSync(dbPath);
  }
  const db = new Database(dbPath);
  try {
    // SQLite creates -wal and -shm with the main file's mode, so 0600 covers all three.
    if (created) fs.chmodSync(dbPath, 0o600);
    db.pragma(`page_size = ${PAGE_SIZE_BYTES}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    db.pragma(`busy_timeout = ${Math.round(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS)}`);
    const version = migrate(db, options.migrations ?? MIGRATIONS, dbPath);
    // A read-only file opens without complaint and fails at the first write: find out now.
    // A full disk is no reason to refuse: the host runs on and holds what it cannot store.
    if (!inMemory) {
      try {
        db.pragma(`user_version = ${version}`);
      } catch (err) {
        if (storageProblem(err) !== 'full') throw err;
      }
    }
    return new Store(db, version);
  } catch (err) {
    db.close();
    throw err;
  }
}
