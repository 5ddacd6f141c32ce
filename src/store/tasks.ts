// Scheduled tasks and their run log (SPEC §6). The scheduler reads only the
// earliest due time (index on status, next_run_at) so it can arm a single timer.

import type Database from 'better-sqlite3';
import type { Task, TaskRunLog, TaskStatus } from '../core/types.js';
import type { NewTask, TaskUpdate } from './api.js';
import { StoreInputError } from './errors.js';
import { truncateOrNull, wholeMsOrNull } from './rows.js';

const DEFAULT_TASK_RUNS_LIMIT = 50;

interface TaskRow {
  id: string;
  group_folder: string;
  chat_jid: string;
  prompt: string;
  schedule_type: Task['scheduleType'];
  schedule_value: string;
  context_mode: Task['contextMode'];
  status: Task['status'];
  next_run_at: number | null;
  last_run_at: number | null;
  last_result: string | null;
  created_at: string;
}

interface TaskRunRow {
  id: number;
  task_id: string;
  started_at: number;
  duration_ms: number;
  status: TaskRunLog['status'];
  result: string | null;
  error: string | null;
}

const TASK_COLUMNS = `id, group_folder, chat_jid, prompt, schedule_type, schedule_value, context_mode,
  status, next_run_at, last_run_at, last_result, created_at`;

// Named parameters match Task's own field names so a whole Task binds as-is.
const TASK_VALUES = `@id, @groupFolder, @chatJid, @prompt, @scheduleType, @scheduleValue, @contextMode,
  @status, @nextRunAt, @lastRunAt, @lastResult, @createdAt`;

function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    groupFolder: row.group_folder,
    chatJid: row.chat_jid,
    prompt: row.prompt,
    scheduleType: row.schedule_type,
    scheduleValue: row.schedule_value,
    contextMode: row.context_mode,
    status: row.status,
    nextRunAt: row.next_run_at,
    lastRunAt: row.last_run_at,
    lastResult: row.last_result,
    createdAt: row.created_at,
  };
}

function toTaskRun(row: TaskRunRow): TaskRunLog {
  return {
    id: row.id,
    taskId: row.task_id,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    status: row.status,
    result: row.result,
    error: row.error,
  };
}

export class TaskTables {
  private readonly insertStmt: Database.Statement<[Task]>;
  private readonly moveChatStmt: Database.Statement<[string, string]>;
  private readonly getStmt: Database.Statement<[string], TaskRow>;
  private readonly listAllStmt: Database.Statement<[], TaskRow>;
  private readonly listByGroupStmt: Database.Statement<[string], TaskRow>;
  private readonly replaceStmt: Database.Statement<[Task]>;
  private readonly deleteStmt: Database.Statement<[string]>;
  private readonly deleteRunsStmt: Database.Statement<[string]>;
  private readonly dueStmt: Database.Statement<[number], TaskRow>;
  private readonly nextDueStmt: Database.Statement<[], { at: number | null }>;
  private readonly insertRunStmt: Database.Statement<[Omit<TaskRunLog, 'id'>]>;
  private readonly runsStmt: Database.Statement<[string, number], TaskRunRow>;
  private readonly createTx: Database.Transaction<(task: NewTask) => Task>;
  private readonly updateTx: Database.Transaction<
    (id: string, update: TaskUpdate, onlyIfStatus?: TaskStatus) => Task | undefined
  >;
  private readonly deleteTx: Database.Transaction<(id: string) => boolean>;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(`INSERT INTO tasks (${TASK_COLUMNS}) VALUES (${TASK_VALUES})`);
    this.moveChatStmt = db.prepare('UPDATE tasks SET chat_jid = ? WHERE chat_jid = ?');
    this.getStmt = db.prepare(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ?`);
    this.listAllStmt = db.prepare(`SELECT ${TASK_COLUMNS} FROM tasks ORDER BY created_at, id`);
    this.listByGroupStmt = db.prepare(
      `SELECT ${TASK_COLUMNS} FROM tasks WHERE group_folder = ? ORDER BY created_at, id`,
    );
    this.replaceStmt = db.prepare(`
      UPDATE tasks SET prompt = @prompt, schedule_type = @scheduleType, schedule_value = @scheduleValue,
        context_mode = @contextMode, status = @status, next_run_at = @nextRunAt, last_run_at = @lastRunAt,
        last_result = @lastResult
      WHERE id = @id`);
    this.deleteStmt = db.prepare('DELETE FROM tasks WHERE id = ?');
    this.deleteRunsStmt = db.prepare('DELETE FROM task_runs WHERE task_id = ?');
    this.dueStmt = db.prepare(`
      SELECT ${TASK_COLUMNS} FROM tasks
      WHERE status = 'active' AND next_run_at IS NOT NULL AND next_run_at <= ?
      ORDER BY next_run_at, created_at, id`);
    this.nextDueStmt = db.prepare("SELECT MIN(next_run_at) AS at FROM tasks WHERE status = 'active'");
    this.insertRunStmt = db.prepare(`
      INSERT INTO task_runs (task_id, started_at, duration_ms, status, result, error)
      VALUES (@taskId, @startedAt, @durationMs, @status, @result, @error)`);
    this.runsStmt = db.prepare(`
      SELECT id, task_id, started_at, duration_ms, status, result, error
      FROM task_runs WHERE task_id = ? ORDER BY id DESC LIMIT ?`);
    this.createTx = db.transaction((task: NewTask) => this.createUnlocked(task));
    this.updateTx = db.transaction((id: string, update: TaskUpdate, onlyIfStatus?: TaskStatus) =>
      this.updateUnlocked(id, update, onlyIfStatus),
    );
    this.deleteTx = db.transaction((id: string) => {
      this.deleteRunsStmt.run(id);
      return this.deleteStmt.run(id).changes > 0;
    });
  }

  /** New tasks start `active`; a duplicate id is refused rather than overwritten. */
  /** Tasks follow their group to its new chat id (see Store.moveGroupChat). */
  moveChat(fromJid: string, toJid: string): void {
    this.moveChatStmt.run(toJid, fromJid);
  }

  createTask(task: NewTask): Task {
    return this.createTx.immediate(task);
  }

  private createUnlocked(newTask: NewTask): Task {
    if (this.getStmt.get(newTask.id))
      throw new StoreInputError(`a task with id ${newTask.id} already exists`);
    const task: Task = {
      id: newTask.id,
      groupFolder: newTask.groupFolder,
      chatJid: newTask.chatJid,
      prompt: newTask.prompt,
      scheduleType: newTask.scheduleType,
      scheduleValue: newTask.scheduleValue,
      contextMode: newTask.contextMode,
      status: 'active',
      nextRunAt: wholeMsOrNull(newTask.nextRunAt),
      lastRunAt: null,
      lastResult: null,
      createdAt: new Date().toISOString(),
    };
    this.insertStmt.run(task);
    return task;
  }

  getTask(id: string): Task | undefined {
    const row = this.getStmt.get(id);
    return row && toTask(row);
  }

  listTasks(groupFolder?: string): Task[] {
    const rows = groupFolder === undefined ? this.listAllStmt.all() : this.listByGroupStmt.all(groupFolder);
    return rows.map(toTask);
  }

  /**
   * Fields left undefined keep their value; an explicit null clears a nullable field.
   * With `onlyIfStatus`, the read and the write share one write-locked transaction,
   * so a pause from the CLI cannot overwrite the scheduler's `completed`.
   */
  updateTask(id: string, update: TaskUpdate, onlyIfStatus?: TaskStatus): Task | undefined {
    return this.updateTx.immediate(id, update, onlyIfStatus);
  }

  private updateUnlocked(id: string, update: TaskUpdate, onlyIfStatus?: TaskStatus): Task | undefined {
    const current = this.getTask(id);
    if (!current) return undefined;
    if (onlyIfStatus !== undefined && current.status !== onlyIfStatus) return undefined;
    const next: Task = { ...current };
    for (const key of Object.keys(update) as (keyof TaskUpdate)[]) {
      const value = update[key];
      // Spreading would let `{ prompt: undefined }` erase a required field.
      if (value !== undefined) Object.assign(next, { [key]: value });
    }
    next.lastResult = truncateOrNull(next.lastResult);
    next.nextRunAt = wholeMsOrNull(next.nextRunAt);
    next.lastRunAt = wholeMsOrNull(next.lastRunAt);
    this.replaceStmt.run(next);
    return next;
  }

  /** Deletes the task and its run log. */
  deleteTask(id: string): boolean {
    return this.deleteTx.immediate(id);
  }

  dueTasks(nowMs: number): Task[] {
    return this.dueStmt.all(nowMs).map(toTask);
  }

  nextDueAt(): number | null {
    return this.nextDueStmt.get()?.at ?? null;
  }

  /** Result and error text are truncated; the run may outlive a deleted task, so no foreign key. */
  logTaskRun(run: Omit<TaskRunLog, 'id'>): void {
    this.insertRunStmt.run({
      taskId: run.taskId,
      startedAt: run.startedAt,
      // Callers time runs with performance.now(); STRICT INTEGER columns refuse fractions.
      durationMs: Math.round(run.durationMs),
      status: run.status,
      result: truncateOrNull(run.result),
      error: truncateOrNull(run.error),
    });
  }

  /** Newest first. */
  taskRuns(taskId: string, limit: number = DEFAULT_TASK_RUNS_LIMIT): TaskRunLog[] {
    return this.runsStmt.all(taskId, limit).map(toTaskRun);
  }
}
