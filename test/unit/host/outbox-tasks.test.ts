// SPEC §3.4 (durable outbox), §5.5 (shutdown) and §6 (tasks) through the host.
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRuns } from '../../support/fake-runs.js';
import { buildTestHost, type TestHost } from '../../support/test-host.js';
import { until } from '../../support/until.js';

const MAIN = 'fake:main';
let t: TestHost | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

describe('durable outbox', () => {
  it('holds messages while the channel is down and sends them in order after reconnect', async () => {
    t = buildTestHost();
    await t.host.start();
    t.channel.setConnected(false);
    for (const text of ['one', 'two', 'three']) t.host.outbox.enqueue(MAIN, text);
    await t.host.outbox.drained();
    expect(t.channel.sent).toEqual([]);
    t.channel.setConnected(true);
    await t.channel.waitForSent(3);
    expect(t.channel.sent.map((s) => s.text)).toEqual(['one', 'two', 'three']);
  });

  it('survives a restart: an unsent message is delivered by the next host', async () => {
    const first = buildTestHost();
    await first.host.start();
    first.channel.setConnected(false);
    first.host.outbox.enqueue(MAIN, 'remember me');
    await first.host.stop();

    t = buildTestHost({ dir: first.dir });
    await t.host.start();
    await t.channel.waitForSent(1);
    expect(t.channel.sent[0]).toEqual({ jid: MAIN, text: 'remember me' });
  });

  it('retries a failing send with backoff and keeps order behind it', async () => {
    t = buildTestHost();
    await t.host.start();
    t.channel.failSends = 'network down';
    t.host.outbox.enqueue(MAIN, 'first');
    t.host.outbox.enqueue(MAIN, 'second');
    await until(() => (t?.host.store.pendingOutbound(Number.MAX_SAFE_INTEGER)[0]?.attempts ?? 0) >= 1);
    expect(t.channel.sent).toEqual([]);
    t.channel.failSends = null;
    await t.channel.waitForSent(2);
    expect(t.channel.sent.map((s) => s.text)).toEqual(['first', 'second']);
  });

  it('prunes delivered replies past the retention period, never pending ones', async () => {
    const longAgo = Date.now() - 100 * 86_400_000;
    const first = buildTestHost({ now: () => longAgo });
    await first.host.start();
    const [delivered] = first.host.outbox.enqueue(MAIN, 'old and delivered');
    await first.channel.waitForSent(1);
    first.channel.setConnected(false);
    const [pending] = first.host.outbox.enqueue(MAIN, 'old and still pending');
    await first.host.stop();

    t = buildTestHost({ dir: first.dir });
    await t.host.start();
    expect(t.host.store.getOutbound(delivered)).toBeUndefined();
    await t.channel.waitForSent(1);
    expect(t.channel.sent).toEqual([{ jid: MAIN, text: 'old and still pending' }]);
    expect(t.host.store.getOutbound(pending)?.status).toBe('sent');
  });

  it('never lets a later message overtake one waiting for its retry', async () => {
    t = buildTestHost();
    await t.host.start();
    const send = t.channel.sendMessage.bind(t.channel);
    let failedOnce = false;
    t.channel.sendMessage = async (jid, text) => {
      if (text === 'first' && !failedOnce) {
        failedOnce = true;
        throw new Error('flaky network');
      }
      return send(jid, text);
    };
    t.host.outbox.enqueue(MAIN, 'first');
    t.host.outbox.enqueue(MAIN, 'second');
    t.host.outbox.enqueue('fake:other', 'other chat is not held back');
    await t.channel.waitForSent(3);
    expect(t.channel.sent.filter((s) => s.jid === MAIN).map((s) => s.text)).toEqual(['first', 'second']);
    expect(failedOnce).toBe(true);
  });

  it('applies the outbound rules: internal text removed, prefix for channels without a bot name, split', async () => {
    t = buildTestHost({ showsBotName: false });
    await t.host.start();
    expect(t.host.outbox.enqueue(MAIN, '<internal>thinking</internal>')).toEqual([]);
    t.host.outbox.enqueue(MAIN, '<internal>plan</internal>Done.');
    await t.channel.waitForSent(1);
    expect(t.channel.sent[0].text).toBe('Andy: Done.');
  });

  it('reports a send that keeps failing back to the tool call as an error', async () => {
    t = buildTestHost({ config: { outboxMaxAttempts: 2 } });
    const main = t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.failSends = 'blocked by server';
    const answer = await t.host.tools.handle({ runId: 'r1', group: main }, 'send_message', { text: 'hi' });
    expect(answer.ok).toBe(false);
    expect(answer.ok ? '' : answer.error).toContain('blocked by server');
  });
});

describe('scheduled tasks through the host', () => {
  it('runs a due task, sends its output to the group chat and logs the run', async () => {
    const runs = new FakeRuns();
    t = buildTestHost({ runs });
    const main = t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    const answer = await t.host.tools.handle({ runId: 'r1', group: main }, 'schedule_task', {
      prompt: 'daily briefing',
      schedule_type: 'once',
      schedule_value: new Date(Date.now() + 150).toISOString(),
    });
    expect(answer.ok).toBe(true);
    await t.channel.waitForSent(1);
    const task = t.host.store.listTasks()[0];
    // The run is told it is a scheduled task, which one, and where its output goes.
    const [header, ...body] = runs.runs[0].request.prompt.split('\n');
    expect(header).toMatch(
      /^<context assistant="Andy" chat="main" chat_id="fake:main" chat_type="direct" channel="fake" time_zone="UTC" now="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"\/>$/,
    );
    expect(body).toEqual([
      `<scheduled_task id="${task.id}" schedule_type="once" schedule_value="${task.scheduleValue}">`,
      'This is a scheduled task, not a live conversation: no human is waiting for an answer right now. ' +
        'Your final output is sent to this chat as a message (wrap it in <internal>…</internal> to send nothing).',
      '<task>daily briefing</task>',
      '</scheduled_task>',
    ]);
    // The answer went to the chat (the echoed note's <internal> part is stripped as any answer's would be).
    expect(t.channel.sent[0].jid).toBe(MAIN);
    expect(t.channel.sent[0].text).toMatch(
      /^reply: <context .*<task>daily briefing<\/task>\n<\/scheduled_task>$/s,
    );
    expect(runs.runs[0].request.task?.contextMode).toBe('group');
    await until(() => t?.host.store.getTask(task.id)?.status === 'completed');
    expect(t.host.store.taskRuns(task.id)[0].status).toBe('success');
  });

  it('gives an isolated task no session and a group task the group session', async () => {
    const runs = new FakeRuns();
    t = buildTestHost({ runs });
    const main = t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    t.host.store.setSession('main', 'session-abc');
    await t.host.start();
    for (const mode of ['isolated', 'group'] as const) {
      await t.host.tools.handle({ runId: 'r1', group: main }, 'schedule_task', {
        prompt: mode,
        schedule_type: 'once',
        schedule_value: new Date(Date.now() + 50).toISOString(),
        context_mode: mode,
      });
    }
    await until(() => runs.runs.length === 2);
    const taskText = (prompt: string): string | undefined => /<task>(.*)<\/task>/.exec(prompt)?.[1];
    const byPrompt = Object.fromEntries(
      runs.runs.map((r) => [taskText(r.request.prompt), r.request.sessionId]),
    );
    expect(byPrompt).toEqual({ isolated: undefined, group: 'session-abc' });
  });

  it('marks a task whose run failed and tells the chat', async () => {
    const runs = new FakeRuns((run) => run.finish({ ok: false, error: 'model down' }));
    t = buildTestHost({ runs });
    const main = t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    await t.host.tools.handle({ runId: 'r1', group: main }, 'schedule_task', {
      prompt: 'x',
      schedule_type: 'once',
      schedule_value: new Date(Date.now() + 20).toISOString(),
    });
    await t.channel.waitForSent(1);
    expect(t.channel.sent[0].text).toMatch(/failed: model down/);
    const task = t.host.store.listTasks()[0];
    expect(t.host.store.taskRuns(task.id)[0]).toMatchObject({ status: 'error', error: 'model down' });
  });
});

describe('shutdown (SPEC §5.5)', () => {
  it('asks live runs to finish, and kills those that do not within the grace', async () => {
    const runs = new FakeRuns(async (run) => {
      // Ignores close: only a kill ends it.
      run.close = () => undefined;
      await run.output('working');
    });
    t = buildTestHost({ runs, config: { shutdownGraceMs: 100 } });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'start something long');
    await t.channel.waitForSent(1);
    const startedAt = Date.now();
    await t.cleanup();
    t = null;
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(await runs.runs[0].done).toMatchObject({ ok: false, error: 'killed: host shutdown' });
  });
});
