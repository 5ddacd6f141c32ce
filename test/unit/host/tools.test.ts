// SPEC §7 through the ToolHost: identity comes from the run, refusals change
// nothing and leave exactly one audit record, bad arguments name the field.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Group } from '../../../src/core/types.js';
import { buildTestHost, type TestHost } from '../../support/test-host.js';

let t: TestHost;
let main: Group;
let family: Group;
let work: Group;

beforeEach(async () => {
  t = buildTestHost();
  main = t.addGroup({ jid: 'fake:main', folder: 'main', isMain: true, requiresTrigger: false });
  family = t.addGroup({ jid: 'fake:family', folder: 'family' });
  work = t.addGroup({ jid: 'fake:work', folder: 'work' });
  await t.host.start();
});
afterEach(() => t.cleanup());

const call = (group: Group, name: string, args: unknown) =>
  t.host.tools.handle({ runId: 'run-1', group }, name, args);
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

function audits() {
  return t.host.store.listAudit();
}

describe('send_message', () => {
  it('lets any group send to its own chat', async () => {
    expect(await call(family, 'send_message', { text: 'hi' })).toMatchObject({ ok: true });
    expect(t.channel.sent).toEqual([{ jid: 'fake:family', text: 'hi' }]);
  });

  it('lets main send to another chat, refuses others and audits', async () => {
    expect(await call(main, 'send_message', { text: 'from main', chat_jid: 'fake:work' })).toMatchObject({
      ok: true,
    });
    const refused = await call(family, 'send_message', { text: 'sneaky', chat_jid: 'fake:work' });
    expect(refused.ok).toBe(false);
    expect(t.channel.sent.map((s) => s.text)).toEqual(['from main']);
    expect(audits()).toEqual([
      expect.objectContaining({
        group: 'family',
        runId: 'run-1',
        action: 'tool_call',
        reason: 'not_authorized',
      }),
    ]);
  });
});

describe('tasks', () => {
  it('schedules for its own group; only main may schedule for another', async () => {
    const own = await call(family, 'schedule_task', {
      prompt: 'p',
      schedule_type: 'once',
      schedule_value: inAnHour(),
    });
    expect(own.ok).toBe(true);
    const foreign = await call(family, 'schedule_task', {
      prompt: 'p',
      schedule_type: 'once',
      schedule_value: inAnHour(),
      target_group_folder: 'work',
    });
    expect(foreign.ok).toBe(false);
    expect(t.host.store.listTasks('work')).toEqual([]);
    const byMain = await call(main, 'schedule_task', {
      prompt: 'p',
      schedule_type: 'interval',
      schedule_value: '3600000',
      target_group_folder: 'work',
    });
    expect(byMain.ok).toBe(true);
    expect(t.host.store.listTasks('work')).toHaveLength(1);
    expect(audits().map((a) => a.reason)).toEqual(['not_authorized']);
  });

  it('lists only own tasks for non-main and all for main; foreign task ops are refused', async () => {
    await call(family, 'schedule_task', { prompt: 'f', schedule_type: 'once', schedule_value: inAnHour() });
    await call(work, 'schedule_task', { prompt: 'w', schedule_type: 'once', schedule_value: inAnHour() });
    const familyList = await call(family, 'list_tasks', {});
    expect(familyList.ok && (familyList.result as Array<{ prompt: string }>).map((x) => x.prompt)).toEqual([
      'f',
    ]);
    const mainList = await call(main, 'list_tasks', {});
    expect(mainList.ok && (mainList.result as unknown[]).length).toBe(2);

    const workTask = t.host.store.listTasks('work')[0];
    for (const tool of ['get_task', 'pause_task', 'cancel_task', 'resume_task']) {
      expect((await call(family, tool, { task_id: workTask.id })).ok).toBe(false);
    }
    expect((await call(family, 'update_task', { task_id: workTask.id, prompt: 'hijacked' })).ok).toBe(false);
    expect(t.host.store.getTask(workTask.id)).toMatchObject({ prompt: 'w', status: 'active' });
    expect(audits()).toHaveLength(5);
    expect((await call(main, 'pause_task', { task_id: workTask.id })).ok).toBe(true);
    expect(t.host.store.getTask(workTask.id)?.status).toBe('paused');
    expect((await call(work, 'resume_task', { task_id: workTask.id })).ok).toBe(true);
    expect((await call(work, 'cancel_task', { task_id: workTask.id })).ok).toBe(true);
    expect(t.host.store.getTask(workTask.id)).toBeUndefined();
  });

  it('refuses pause_task and resume_task on a completed task and says to schedule a new one', async () => {
    const made = await call(family, 'schedule_task', {
      prompt: 'p',
      schedule_type: 'once',
      schedule_value: inAnHour(),
    });
    const id = made.ok ? (made.result as { id: string }).id : '';
    t.host.store.updateTask(id, { status: 'completed', nextRunAt: null });
    for (const tool of ['pause_task', 'resume_task']) {
      expect(await call(family, tool, { task_id: id })).toEqual({
        ok: false,
        error: `task ${id} is completed and cannot be ${tool === 'pause_task' ? 'paused' : 'resumed'}; schedule a new one with schedule_task`,
      });
    }
    expect(t.host.store.getTask(id)?.status).toBe('completed');
  });

  it('refuses an invalid schedule with a message naming the field and an example', async () => {
    const answer = await call(family, 'schedule_task', {
      prompt: 'p',
      schedule_type: 'cron',
      schedule_value: 'every day',
    });
    expect(answer.ok).toBe(false);
    expect(answer.ok ? '' : answer.error).toMatch(/schedule_value.*e\.g\./);
    expect(t.host.store.listTasks()).toEqual([]);
  });
});

describe('groups', () => {
  it('lets only main list, register and unregister groups', async () => {
    for (const [tool, args] of [
      ['list_groups', {}],
      ['register_group', { jid: 'fake:new', name: 'New', folder: 'new-group', trigger: '@Andy' }],
      ['unregister_group', { jid: 'fake:work' }],
      ['read_egress_allowlist', {}],
    ] as const) {
      expect((await call(family, tool, args)).ok).toBe(false);
    }
    expect(t.host.store.getGroupByJid('fake:work')).toBeDefined();
    expect(t.host.store.getGroupByJid('fake:new')).toBeUndefined();
    expect(audits()).toHaveLength(4);

    expect(
      (
        await call(main, 'register_group', {
          jid: 'local:new',
          name: 'New',
          folder: 'new-group',
          trigger: '@Andy',
        })
      ).ok,
    ).toBe(true);
    expect(t.host.store.getGroupByFolder('new-group')).toMatchObject({ jid: 'local:new', isMain: false });
    const listed = await call(main, 'list_groups', {});
    expect(listed.ok).toBe(true);
    expect((await call(main, 'unregister_group', { jid: 'fake:work' })).ok).toBe(true);
  });

  it('registers a group with a sender allowlist, and refuses a bad one naming the field', async () => {
    const ok = await call(main, 'register_group', {
      jid: 'local:club',
      name: 'Club',
      folder: 'club',
      trigger: '@Andy',
      allowed_senders: ['491701234567@s.whatsapp.net', 'local:alice'],
    });
    expect(ok.ok).toBe(true);
    expect(t.host.store.getGroupByJid('local:club')?.allowedSenders).toEqual([
      '491701234567@s.whatsapp.net',
      'local:alice',
    ]);
    for (const allowed_senders of [['alice'], [], ['491701234567@g.us'], 'local:alice']) {
      const bad = await call(main, 'register_group', {
        jid: 'local:club2',
        name: 'Club 2',
        folder: 'club2',
        trigger: '@Andy',
        allowed_senders,
      });
      expect(bad.ok ? '' : bad.error).toMatch(/allowed_senders/);
    }
    expect(t.host.store.getGroupByJid('local:club2')).toBeUndefined();
  });

  it('refuses a bad folder with the field named and an example', async () => {
    const answer = await call(main, 'register_group', {
      jid: 'local:x',
      name: 'X',
      folder: '../etc',
      trigger: '@Andy',
    });
    expect(answer.ok ? '' : answer.error).toMatch(/folder.*e\.g\./);
  });
});

describe('bad calls (SPEC §12)', () => {
  it('answers an unknown tool with an error and an audit record', async () => {
    const answer = await call(family, 'delete_everything', {});
    expect(answer).toMatchObject({ ok: false });
    expect(audits()).toEqual([
      expect.objectContaining({ reason: 'unknown_tool', target: 'delete_everything' }),
    ]);
  });

  it('rejects a forged identity riding in the arguments', async () => {
    const answer = await call(family, 'list_tasks', { group_folder: 'main', isMain: true });
    expect(answer.ok).toBe(false);
    expect(answer.ok ? '' : answer.error).toMatch(/group_folder|isMain|Unrecognized/i);
    expect(audits()[0]).toMatchObject({ reason: 'invalid_args' });
  });

  it('names the wrong field', async () => {
    const answer = await call(family, 'schedule_task', {
      prompt: 'p',
      schedule_type: 'weekly',
      schedule_value: 'x',
    });
    expect(answer.ok ? '' : answer.error).toContain('schedule_type');
  });
});

describe('task cap (maxActiveTasksPerGroup)', () => {
  it('refuses schedule_task past the cap with an error naming it, counts paused tasks, and audits', async () => {
    const capped = buildTestHost({ config: { maxActiveTasksPerGroup: 3 } });
    try {
      const boss = capped.addGroup({
        jid: 'fake:boss',
        folder: 'main',
        isMain: true,
        requiresTrigger: false,
      });
      const fam = capped.addGroup({ jid: 'fake:fam', folder: 'fam' });
      await capped.host.start();
      const schedule = (group: Group, extra: object = {}) =>
        capped.host.tools.handle({ runId: `run-${group.folder}`, group }, 'schedule_task', {
          prompt: 'p',
          schedule_type: 'interval',
          schedule_value: '3600000',
          ...extra,
        });
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const ok = await schedule(fam);
        expect(ok.ok).toBe(true);
        ids.push((ok as { result: { id: string } }).result.id);
      }
      const refused = await schedule(fam);
      expect(refused).toEqual({
        ok: false,
        error:
          'group "fam" already has 3 scheduled tasks, the maximum (3); cancel one before scheduling another',
      });
      // A paused task can be resumed, so it still counts; main scheduling for the group is capped too.
      const pause = await capped.host.tools.handle({ runId: 'run-fam', group: fam }, 'pause_task', {
        task_id: ids[0],
      });
      expect(pause.ok).toBe(true);
      expect((await schedule(fam)).ok).toBe(false);
      expect((await schedule(boss, { target_group_folder: 'fam' })).ok).toBe(false);
      expect(capped.host.store.listTasks('fam')).toHaveLength(3);
      // Cancelling one makes room again.
      await capped.host.tools.handle({ runId: 'run-fam', group: fam }, 'cancel_task', { task_id: ids[1] });
      expect((await schedule(fam)).ok).toBe(true);

      const records = capped.host.store.listAudit();
      expect(records.map((r) => [r.group, r.reason, r.target, r.count])).toEqual([
        ['fam', 'task_limit', 'schedule_task:fam', 2],
        ['main', 'task_limit', 'schedule_task:fam', 1],
      ]);
    } finally {
      await capped.cleanup();
    }
  });
});

describe('audit targets chosen by the agent', () => {
  it('never stores a raw tool name or chat id: invisible characters go, length is bounded', async () => {
    const evilName = `x\u001b[2J\u202eevil${'n'.repeat(500)}`;
    expect((await call(family, evilName, {})).ok).toBe(false);
    const evilJid = `fake:a\nFORGED\u0000${'j'.repeat(240)}`;
    expect((await call(family, 'send_message', { text: 'x', chat_jid: evilJid })).ok).toBe(false);
    const [unknown, notAllowed] = audits();
    expect(unknown).toMatchObject({ reason: 'unknown_tool', target: '(invalid tool name)' });
    expect(notAllowed.reason).toBe('not_authorized');
    expect(notAllowed.target).toMatch(/^send_message:fake:aFORGEDj+…$/);
    expect(notAllowed.target!.length).toBeLessThanOrEqual(160);
  });
});
