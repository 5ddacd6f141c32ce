// The task and group parts of StoreApi in memory, for scheduler tests that must
// not depend on SQLite. Semantics follow the StoreApi doc comments; any other
// method throws so a test that strays outside this surface fails loudly.
import { makeGroup } from '../../support/groups.js';
import type { Group, Task, TaskRunLog } from '../../../src/core/types.js';
import type { NewTask, StoreApi, TaskUpdate } from '../../../src/store/api.js';

type TaskPart = Pick<
  StoreApi,
  | 'getGroupByFolder'
  | 'createTask'
  | 'getTask'
  | 'listTasks'
  | 'updateTask'
  | 'deleteTask'
  | 'dueTasks'
  | 'nextDueAt'
  | 'logTaskRun'
  | 'taskRuns'
>;

export class MemoryTaskStore implements TaskPart {
  readonly tasks = new Map<string, Task>();
  readonly runs: TaskRunLog[] = [];
  readonly groups = new Map<string, Group>();
  /** Counts listTasks() calls, to check the scheduler's fast path. */
  listTasksCalls = 0;

  addGroup(folder: string): Group {
    const group: Group = makeGroup(folder);
    this.groups.set(folder, group);
    return group;
  }

  getGroupByFolder(folder: string): Group | undefined {
    return this.groups.get(folder);
  }

  createTask(task: NewTask): Task {
    const created: Task = {
      ...task,
      status: 'active',
      lastRunAt: null,
      lastResult: null,
      createdAt: new Date(0).toISOString(),
    };
    this.tasks.set(task.id, created);
    return { ...created };
  }

  getTask(id: string): Task | undefined {
    const task = this.tasks.get(id);
    return task && { ...task };
  }

  listTasks(groupFolder?: string): Task[] {
    this.listTasksCalls += 1;
    return [...this.tasks.values()]
      .filter((t) => !groupFolder || t.groupFolder === groupFolder)
      .map((t) => ({ ...t }));
  }

  updateTask(id: string, update: TaskUpdate): Task | undefined {
    const task = this.tasks.get(id);
    if (!task) return undefined;
    Object.assign(task, update);
    return { ...task };
  }

  deleteTask(id: string): boolean {
    return this.tasks.delete(id);
  }

  dueTasks(nowMs: number): Task[] {
    return [...this.tasks.values()]
      .filter((t) => t.status === 'active' && t.nextRunAt !== null && t.nextRunAt <= nowMs)
      .sort((a, b) => (a.nextRunAt as number) - (b.nextRunAt as number))
      .map((t) => ({ ...t }));
  }

  nextDueAt(): number | null {
    let earliest: number | null = null;
    for (const t of this.tasks.values()) {
      if (t.status !== 'active' || t.nextRunAt === null) continue;
      if (earliest === null || t.nextRunAt < earliest) earliest = t.nextRunAt;
    }
    return earliest;
  }

  logTaskRun(run: Omit<TaskRunLog, 'id'>): void {
    this.runs.push({ ...run, id: this.runs.length + 1 });
  }

  taskRuns(taskId: string, limit = 50): TaskRunLog[] {
    return this.runs
      .filter((r) => r.taskId === taskId)
      .reverse()
      .slice(0, limit);
  }

  /** The full StoreApi shape; methods outside the task part throw. */
  asStoreApi(): StoreApi {
    return new Proxy(this, {
      get(target, property, receiver) {
        if (property in target) {
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        }
        return () => {
          throw new Error(`MemoryTaskStore does not implement ${String(property)}`);
        };
      },
    }) as unknown as StoreApi; // the proxy supplies every other member as a throwing stub
  }
}
