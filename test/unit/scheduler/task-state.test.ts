// The task state machine on a real SQLite store: active ⇄ paused, completed and
// error are final, and resuming re-computes the next run from now.
import { describe, expect, it } from 'vitest';
import type { Task } from '../../../src/core/types.js';
import { applyTaskStep, resumedNextRunAt, stepRefusal } from '../../../src/scheduler/task-state.js';
import { tempStore } from '../store/helpers.js';

const NOW_MS = Date.parse('2026-06-10T12:34:00Z');
const options = { nowMs: NOW_MS, timeZone: 'UTC', scheduleHint: 'nanoclaw tasks add' };

function withTask(fields: Partial<Task> & Pick<Task, 'scheduleType' | 'scheduleValue'>) {
  const { store } = tempStore();
  const task = store.createTask({
    id: 'task-1',
    groupFolder: 'main',
    chatJid: 'local:main',
    prompt: 'p',
    contextMode: 'group',
    nextRunAt: fields.nextRunAt ?? NOW_MS + 60_000,
    scheduleType: fields.scheduleType,
    scheduleValue: fields.scheduleValue,
  });
  if (fields.status) store.updateTask(task.id, { status: fields.status, nextRunAt: fields.nextRunAt });
  return store;
}

describe('task state machine', () => {
  it('pauses an active task keeping its next run, and a second pause changes nothing', () => {
    const store = withTask({ scheduleType: 'cron', scheduleValue: '0 9 * * *', nextRunAt: NOW_MS + 5_000 });
    const paused = applyTaskStep(store, 'task-1', 'pause', options);
    expect(paused).toMatchObject({
      ok: true,
      changed: true,
      task: { status: 'paused', nextRunAt: NOW_MS + 5_000 },
    });
    expect(applyTaskStep(store, 'task-1', 'pause', options)).toMatchObject({ ok: true, changed: false });
    expect(store.getTask('task-1')?.status).toBe('paused');
  });

  it.each([
    ['completed', 'completed'],
    ['error', 'stopped with an error'],
  ] as const)('refuses to pause or resume a %s task, naming the state and what to do', (status, words) => {
    const store = withTask({
      scheduleType: 'once',
      scheduleValue: '2026-06-10T12:00',
      status,
      nextRunAt: null,
    });
    for (const step of ['pause', 'resume'] as const) {
      const result = applyTaskStep(store, 'task-1', step, options);
      expect(result).toEqual({
        ok: false,
        message: `task task-1 is ${words} and cannot be ${step}d; schedule a new one with nanoclaw tasks add`,
      });
    }
    expect(store.getTask('task-1')?.status).toBe(status);
  });

  it('resumes a cron task at its next slot after now, not at the stale stored time', () => {
    const stale = Date.parse('2026-06-01T09:00:00Z');
    const store = withTask({
      scheduleType: 'cron',
      scheduleValue: '0 9 * * *',
      status: 'paused',
      nextRunAt: stale,
    });
    const resumed = applyTaskStep(store, 'task-1', 'resume', options);
    expect(resumed).toMatchObject({ ok: true, changed: true, task: { status: 'active' } });
    expect(store.getTask('task-1')?.nextRunAt).toBe(Date.parse('2026-06-11T09:00:00Z'));
  });

  it('resumes an interval task one interval from now', () => {
    const store = withTask({
      scheduleType: 'interval',
      scheduleValue: '3600000',
      status: 'paused',
      nextRunAt: 1,
    });
    applyTaskStep(store, 'task-1', 'resume', options);
    expect(store.getTask('task-1')?.nextRunAt).toBe(NOW_MS + 3_600_000);
  });

  it('resumes a one-off at its own time, or now when that passed while paused', () => {
    const once = { scheduleType: 'once', scheduleValue: 'x' } as const;
    expect(resumedNextRunAt({ ...once, nextRunAt: NOW_MS + 99 } as Task, NOW_MS, 'UTC')).toBe(NOW_MS + 99);
    expect(resumedNextRunAt({ ...once, nextRunAt: NOW_MS - 99 } as Task, NOW_MS, 'UTC')).toBe(NOW_MS);
  });

  it('resuming an active task changes nothing; an unknown id says so', () => {
    const store = withTask({ scheduleType: 'interval', scheduleValue: '3600000', nextRunAt: NOW_MS + 7 });
    expect(applyTaskStep(store, 'task-1', 'resume', options)).toMatchObject({ ok: true, changed: false });
    expect(store.getTask('task-1')?.nextRunAt).toBe(NOW_MS + 7);
    expect(applyTaskStep(store, 'nope', 'resume', options)).toEqual({ ok: false, message: 'no task nope' });
  });

  it('a conditional update does not overwrite a status someone else changed', () => {
    const store = withTask({ scheduleType: 'interval', scheduleValue: '3600000', status: 'completed' });
    expect(store.updateTask('task-1', { status: 'paused' }, 'active')).toBeUndefined();
    expect(store.getTask('task-1')?.status).toBe('completed');
    expect(store.updateTask('task-1', { status: 'paused' }, 'completed')?.status).toBe('paused');
  });

  it('names the way to schedule anew that the caller has', () => {
    expect(stepRefusal({ id: 't', status: 'completed' }, 'resume', 'schedule_task')).toBe(
      'task t is completed and cannot be resumed; schedule a new one with schedule_task',
    );
    expect(stepRefusal({ id: 't', status: 'paused' }, 'resume', 'schedule_task')).toBeNull();
  });
});
