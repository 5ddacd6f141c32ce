// SPEC §4.1–4.4 and §12 through the whole host (real SQLite, queue, outbox,
// scheduler; an in-process run double): a message is done only once its
// answer is stored, a crash re-runs what was in flight and never repeats what
// was answered, a failed follow-up is retried, a shutdown re-runs its task,
// and no message can make a group unanswerable.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodedBytes } from '../../../src/core/prompt.js';
import { FakeRuns, type FakeRun } from '../../support/fake-runs.js';
import { buildTestHost, type TestHost } from '../../support/test-host.js';
import { until } from '../../support/until.js';

const MAIN = 'fake:main';
/** Messages of today: the fake channel's default date is older than the retention period. */
const NOW = (): { timestamp: string } => ({ timestamp: new Date().toISOString() });
/** Answers and ends, so `settled()` can resolve. */
const answerOnce = (): FakeRuns =>
  new FakeRuns(async (run) => {
    // The tail of the prompt holds the newest message (the context header comes first).
    await run.output(`reply: ${run.request.prompt.slice(-200)}`);
    run.finish({ ok: true });
  });

const hosts: TestHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.cleanup();
});

function host(options: Parameters<typeof buildTestHost>[0] = {}): TestHost {
  const built = buildTestHost(options);
  hosts.push(built);
  return built;
}

/** Simulates `kill -9`: the store is closed under the host, nothing else runs. */
function crash(h: TestHost): void {
  hosts.splice(hosts.indexOf(h), 1);
  h.host.store.close();
}

async function started(runs: FakeRuns, count: number): Promise<FakeRun> {
  await until(() => runs.runs.length >= count, 5000, `run ${count} to start`);
  return runs.runs[count - 1];
}

describe('a message is done only when its answer is stored (SPEC §4.1)', () => {
  it('re-runs a message whose run died with the host, and answers it once', async () => {
    const silent = new FakeRuns(async () => undefined); // started, never answers
    const first = host({ runs: silent });
    first.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await first.host.start();
    first.channel.receive(MAIN, 'are you there?', NOW());
    await started(silent, 1);
    expect(first.host.store.getCursor(MAIN)).toBe(0); // in flight, not done
    crash(first);

    const runs = answerOnce();
    const second = host({ runs, dir: first.dir });
    await second.host.start();
    await second.channel.waitForSent(1);
    await second.host.settled();
    expect(second.channel.sent).toHaveLength(1);
    expect(second.channel.sent[0].text).toContain('are you there?');
    expect(second.host.store.getCursor(MAIN)).toBe(second.host.store.latestSeq(MAIN));
  });

  it('after a crash re-runs only the unanswered follow-up, never the answered turn', async () => {
    const runs = new FakeRuns(async (run) => {
      await run.output(`answer 1 to ${run.request.prompt}`);
    });
    const first = host({ runs });
    first.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await first.host.start();
    first.channel.receive(MAIN, 'first question', NOW());
    const run = await started(runs, 1);
    await first.channel.waitForSent(1);
    first.channel.receive(MAIN, 'second question', NOW());
    await until(() => run.followUps.length === 1);
    crash(first); // the follow-up was given to the run but never answered

    const again = answerOnce();
    const second = host({ runs: again, dir: first.dir });
    await second.host.start();
    const rerun = await started(again, 1);
    expect(rerun.request.prompt).toContain('second question');
    expect(rerun.request.prompt).not.toContain('first question');
    await second.host.settled();
    // The first answer was delivered before the crash and is not produced again.
    const pending = second.host.store.pendingOutbound(Number.MAX_SAFE_INTEGER);
    expect(pending).toEqual([]);
    expect(second.channel.sent.map((s) => s.text).join('\n')).not.toContain('first question');
  });

  it('keeps an answer that was stored but not yet delivered, and delivers it after the crash', async () => {
    const runs = new FakeRuns(async (run) => {
      await run.output('stored answer');
    });
    const first = host({ runs });
    first.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    first.channel.setConnected(false); // stored, never sent
    await first.host.start();
    first.channel.setConnected(false);
    first.channel.receive(MAIN, 'hello', NOW());
    await until(() => first.host.store.getCursor(MAIN) > 0, 5000, 'the answer to be stored');
    crash(first);

    const again = answerOnce();
    const second = host({ runs: again, dir: first.dir });
    await second.host.start();
    await second.channel.waitForSent(1);
    await second.host.settled();
    expect(second.channel.sent.map((s) => s.text)).toEqual(['stored answer']);
    expect(again.runs).toHaveLength(0); // answered already: no re-run
  });
});

describe('turns of a live run (SPEC §4.3)', () => {
  it('gives a follow-up that arrives mid-turn to the run once that turn is answered, as the next turn', async () => {
    const runs = new FakeRuns(async () => undefined); // answers when the test says so
    const t = host({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'one', NOW());
    const run = await started(runs, 1);
    t.channel.receive(MAIN, 'two', NOW());
    t.channel.receive(MAIN, 'three', NOW());
    // Mid-turn the model would fold them into the answer to "one": they wait, stored.
    expect(run.followUps).toEqual([]);
    await run.output('answer to one');
    expect(run.followUps).toHaveLength(1);
    expect(run.followUps[0]).toContain('two');
    expect(run.followUps[0]).toContain('three');
    const [first] = t.host.store.messagesSince(MAIN, 0);
    expect(t.host.store.getCursor(MAIN)).toBe(first.seq);
    await run.output('answer to two and three');
    expect(t.host.store.getCursor(MAIN)).toBe(t.host.store.latestSeq(MAIN));
    expect(runs.runs).toHaveLength(1);
  });

  it('retries a follow-up whose run failed after answering the earlier turn', async () => {
    let attempt = 0;
    const runs = new FakeRuns(async (run) => {
      attempt++;
      if (attempt === 1) {
        await run.output('answer to one');
        run.onFollowUp = () => run.finish({ ok: false, error: 'runner crashed' });
        return;
      }
      await run.output(`retried: ${run.request.prompt}`);
      run.finish({ ok: true });
    });
    const t = host({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'one', NOW());
    await t.channel.waitForSent(1);
    t.channel.receive(MAIN, 'two', NOW());
    await t.channel.waitForSent(2);
    await t.host.settled();
    expect(runs.runs).toHaveLength(2);
    expect(runs.runs[1].request.prompt).toContain('two');
    expect(runs.runs[1].request.prompt).not.toContain('>one<');
    expect(t.channel.sent.map((s) => s.text)).toEqual(['answer to one', expect.stringContaining('retried:')]);
  });

  it('reports an unanswered follow-up after the last retry, and the chat is not stuck on it', async () => {
    let attempt = 0;
    const runs = new FakeRuns(async (run) => {
      attempt++;
      if (attempt === 1) {
        await run.output('answer to one');
        run.onFollowUp = () => run.finish({ ok: false, error: 'model unreachable' });
        return;
      }
      if (run.request.prompt.includes('three')) {
        await run.output('answer to three');
        run.finish({ ok: true });
        return;
      }
      run.finish({ ok: false, error: 'model unreachable' });
    });
    const t = host({ runs, config: { retryBaseMs: 10, maxRetries: 1 } });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'one', NOW());
    await t.channel.waitForSent(1);
    t.channel.receive(MAIN, 'two', NOW());
    await t.channel.waitForSent(2);
    expect(t.channel.sent[1].text).toMatch(/couldn't process your last messages.*model unreachable/);
    await t.host.settled();
    t.channel.receive(MAIN, 'three', NOW());
    await t.channel.waitForSent(3);
    // The reported message is done: the next prompt holds only the new one.
    const last = runs.runs[runs.runs.length - 1];
    expect(last.request.prompt).toContain('three');
    expect(last.request.prompt).not.toContain('two');
  });
});

describe('tasks and shutdown (SPEC §6.1)', () => {
  it('a task interrupted by shutdown is not marked done, not reported, and runs again at the next start', async () => {
    const hang = new FakeRuns(async () => undefined); // never answers, never ends by itself
    hang.behaviour = async (run) => {
      run.close = () => undefined; // ignores the request to finish: killed after the grace
    };
    const first = host({ runs: hang, config: { shutdownGraceMs: 50 } });
    first.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    const dueMs = Date.now() - 1000;
    first.host.store.createTask({
      id: 'task-1',
      groupFolder: 'main',
      chatJid: MAIN,
      prompt: 'daily briefing',
      scheduleType: 'once',
      scheduleValue: new Date(dueMs).toISOString(),
      contextMode: 'group',
      nextRunAt: dueMs,
    });
    await first.host.start();
    await started(hang, 1);
    hosts.splice(hosts.indexOf(first), 1);
    await first.host.stop();
    const reopened = host({ runs: answerOnce(), dir: first.dir });
    const task = reopened.host.store.getTask('task-1');
    expect(task?.status).toBe('active');
    expect(task?.nextRunAt).toBe(dueMs);
    expect(reopened.host.store.pendingOutbound(Number.MAX_SAFE_INTEGER)).toEqual([]);

    await reopened.host.start();
    await reopened.channel.waitForSent(1);
    await reopened.host.settled();
    expect(reopened.channel.sent.map((s) => s.text)).toEqual([expect.stringContaining('daily briefing')]);
    expect(reopened.host.store.getTask('task-1')?.status).toBe('completed');
    expect(reopened.host.store.taskRuns('task-1')).toHaveLength(1);
  });
});

describe('no input makes a group unanswerable (SPEC §12)', () => {
  it('cuts a 10 MB message in the prompt and saves its full text in the group folder', async () => {
    const runs = answerOnce();
    const t = host({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    const huge = `start-${'x'.repeat(10 * 1024 * 1024)}-end`;
    t.channel.receive(MAIN, huge, NOW());
    const run = await started(runs, 1);
    await t.host.settled();
    expect(encodedBytes(run.request.prompt)).toBeLessThanOrEqual(t.config.maxPromptBytes);
    const seq = t.host.store.latestSeq(MAIN);
    const marker = `the full text is in the file inbox/message-${seq}.txt`;
    expect(run.request.prompt).toContain(marker);
    expect(run.request.prompt).toContain('start-xxx');
    const saved = path.join(t.config.paths.groupsDir, 'main', 'inbox', `message-${seq}.txt`);
    expect(fs.readFileSync(saved, 'utf8')).toBe(huge);
    expect(t.channel.sent).toHaveLength(1);
  });

  it('leaves the oldest context out when many messages exceed the budget; the newest always stays', async () => {
    const runs = answerOnce();
    const t = host({ runs });
    t.addGroup({ jid: 'fake:family', folder: 'family', requiresTrigger: true });
    await t.host.start();
    for (let i = 0; i < 60; i++) t.channel.receive('fake:family', `ctx-${i} ${'y'.repeat(4800)}`, NOW());
    t.channel.receive('fake:family', '@Andy summarise please', NOW());
    const run = await started(runs, 1);
    await t.host.settled();
    expect(encodedBytes(run.request.prompt)).toBeLessThanOrEqual(t.config.maxPromptBytes);
    expect(run.request.prompt).toContain('@Andy summarise please');
    expect(run.request.prompt).toContain('ctx-59');
    expect(run.request.prompt).not.toContain('ctx-0 ');
    expect(run.request.prompt).toMatch(/<omitted count="\d+">/);
    // All of it is done now: the next trigger starts from here.
    expect(t.host.store.getCursor('fake:family')).toBe(t.host.store.latestSeq('fake:family'));
  });

  it('escaping cannot push a prompt past the budget (control characters grow sixfold in JSON)', async () => {
    const runs = answerOnce();
    const t = host({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, `a${'\u0001'.repeat(200_000)}`, NOW());
    const run = await started(runs, 1);
    await t.host.settled();
    expect(encodedBytes(run.request.prompt)).toBeLessThanOrEqual(t.config.maxPromptBytes);
  });
});
