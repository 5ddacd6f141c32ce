import { describe, expect, it } from 'vitest';
import type { NewTask } from '../../../src/store/api.js';
import { StoreInputError } from '../../../src/store/errors.js';
import { MAX_LOGGED_TEXT_CHARS } from '../../../src/store/rows.js';
import { tempStore } from './helpers.js';

function newTask(overrides: Partial<NewTask> = {}): NewTask {
  return {
    id: 'task-1',
    groupFolder: 'family',
    chatJid: 'family@g.us',
    prompt: 'Summarise the week',
    scheduleType: 'cron',
    scheduleValue: '0 9 * * 1',
    contextMode: 'group',
    nextRunAt: 1_000,
    ...overrides,
  };
}

describe('tasks', () => {
  it('creates active tasks and reads them back', () => {
    const { store } = tempStore();
    const before = Date.now();
    const created = store.createTask(newTask());
    expect(created).toMatchObject({
      ...newTask(),
      status: 'active',
      lastRunAt: null,
      lastResult: null,
    });
    expect(Date.parse(created.createdAt)).toBeGreaterThanOrEqual(before - 1);
    expect(store.getTask('task-1')).toEqual(created);
    expect(store.getTask('missing')).toBeUndefined();
    expect(() => store.createTask(newTask())).toThrow(StoreInputError);
  });

  it('lists all tasks or one group, and refuses invalid enum values at the schema', () => {
    const { store } = tempStore();
    store.createTask(newTask({ id: 'a' }));
    store.createTask(newTask({ id: 'b', groupFolder: 'main', chatJid: 'me@s.whatsapp.net' }));
    store.createTask(newTask({ id: 'c', scheduleType: 'interval', scheduleValue: '3600000' }));
    expect(store.listTasks().map((t) => t.id)).toEqual(['a', 'b', 'c']);
    expect(store.listTasks('family').map((t) => t.id)).toEqual(['a', 'c']);
    expect(store.listTasks('nobody')).toEqual([]);
    // Casts simulate a caller that skipped validation: the CHECK constraint still holds.
    expect(() =>
      store.createTask(newTask({ id: 'd', scheduleType: 'weekly' as NewTask['scheduleType'] })),
    ).toThrow();
    expect(store.getTask('d')).toBeUndefined();
  });

  it('updates only the given fields; explicit null clears', () => {
    const { store } = tempStore();
    store.createTask(newTask());
    const updated = store.updateTask('task-1', { prompt: 'New prompt', lastRunAt: 5_000, lastResult: 'ok' });
    expect(updated).toMatchObject({
      prompt: 'New prompt',
      lastRunAt: 5_000,
      lastResult: 'ok',
      nextRunAt: 1_000,
    });
    expect(store.getTask('task-1')).toEqual(updated);

    const paused = store.updateTask('task-1', { status: 'paused', nextRunAt: null, prompt: undefined });
    expect(paused).toMatchObject({ status: 'paused', nextRunAt: null, prompt: 'New prompt' });
    expect(store.updateTask('missing', { status: 'paused' })).toBeUndefined();

    const long = store.updateTask('task-1', { lastResult: 'x'.repeat(10_000) })!;
    expect(long.lastResult!.length).toBeLessThanOrEqual(MAX_LOGGED_TEXT_CHARS);
    expect(store.getTask('task-1')!.lastResult).toBe(long.lastResult);
  });

  it('dueTasks returns active due tasks earliest first; nextDueAt ignores paused tasks', () => {
    const { store } = tempStore();
    store.createTask(newTask({ id: 'late', nextRunAt: 3_000 }));
    store.createTask(newTask({ id: 'early', nextRunAt: 1_000 }));
    store.createTask(newTask({ id: 'paused', nextRunAt: 500 }));
    store.createTask(newTask({ id: 'future', nextRunAt: 10_000 }));
    store.createTask(newTask({ id: 'unscheduled', nextRunAt: null }));
    store.createTask(newTask({ id: 'done', nextRunAt: 100 }));
    store.updateTask('paused', { status: 'paused' });
    store.updateTask('done', { status: 'completed' });

    expect(store.dueTasks(3_000).map((t) => t.id)).toEqual(['early', 'late']);
    expect(store.dueTasks(999)).toEqual([]);
    expect(store.nextDueAt()).toBe(1_000);

    store.updateTask('early', { status: 'paused' });
    store.updateTask('late', { status: 'error', nextRunAt: null });
    expect(store.nextDueAt()).toBe(10_000);
    store.deleteTask('future');
    expect(store.nextDueAt()).toBeNull();
  });

  it('deletes a task and its run log', () => {
    const { store } = tempStore();
    store.createTask(newTask());
    store.logTaskRun({
      taskId: 'task-1',
      startedAt: 1,
      durationMs: 2,
      status: 'success',
      result: 'r',
      error: null,
    });
    expect(store.deleteTask('task-1')).toBe(true);
    expect(store.getTask('task-1')).toBeUndefined();
    expect(store.taskRuns('task-1')).toEqual([]);
    expect(store.deleteTask('task-1')).toBe(false);
  });

  it('logs runs newest first, truncating long text and rounding durations', () => {
    const { store } = tempStore();
    store.createTask(newTask());
    store.logTaskRun({
      taskId: 'task-1',
      startedAt: 1_000,
      durationMs: 12.7,
      status: 'success',
      result: 'done',
      error: null,
    });
    store.logTaskRun({
      taskId: 'task-1',
      startedAt: 2_000,
      durationMs: 5,
      status: 'error',
      result: null,
      error: 'e'.repeat(5_000),
    });
    store.logTaskRun({
      taskId: 'other',
      startedAt: 3_000,
      durationMs: 1,
      status: 'success',
      result: null,
      error: null,
    });

    const runs = store.taskRuns('task-1');
    expect(runs.map((r) => r.startedAt)).toEqual([2_000, 1_000]);
    expect(runs[1]).toMatchObject({
      taskId: 'task-1',
      durationMs: 13,
      status: 'success',
      result: 'done',
      error: null,
    });
    expect(runs[0].error!.length).toBe(MAX_LOGGED_TEXT_CHARS);
    expect(runs[0].error!.endsWith('…')).toBe(true);
    expect(store.taskRuns('task-1', 1).map((r) => r.startedAt)).toEqual([2_000]);
  });

  it('truncation never splits a surrogate pair', () => {
    const { store } = tempStore();
    const emoji = '😀'.repeat(MAX_LOGGED_TEXT_CHARS);
    store.logTaskRun({
      taskId: 't',
      startedAt: 1,
      durationMs: 1,
      status: 'success',
      result: emoji,
      error: null,
    });
    const result = store.taskRuns('t')[0].result!;
    expect(result.length).toBeLessThanOrEqual(MAX_LOGGED_TEXT_CHARS);
    expect(result.slice(0, -1)).toBe('😀'.repeat((result.length - 1) / 2));
  });
});
