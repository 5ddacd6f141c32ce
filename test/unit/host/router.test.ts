// SPEC §2 and §4 through the whole host: real SQLite, real queue and outbox,
// an in-process run double.
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRuns, type FakeRun } from '../../support/fake-runs.js';
import { buildTestHost, type TestHost } from '../../support/test-host.js';
import { until } from '../../support/until.js';

const MAIN = 'fake:main';
const FAMILY = 'fake:family';

let t: TestHost | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

async function started(runs: FakeRuns, count: number): Promise<FakeRun> {
  await until(() => runs.runs.length >= count);
  return runs.runs[count - 1];
}

describe('inbound routing', () => {
  it('keeps only metadata for unregistered chats', async () => {
    t = buildTestHost();
    await t.host.start();
    t.channel.receive('fake:stranger', '@Andy hello', { chatName: 'Stranger' });
    expect(t.host.store.listChats().map((c) => c.jid)).toContain('fake:stranger');
    expect(t.host.store.messagesSince('fake:stranger', 0)).toEqual([]);
    expect((t.runs as FakeRuns).runs).toHaveLength(0);
  });

  it('wakes main on any message and answers through the outbox', async () => {
    t = buildTestHost();
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'hello there');
    await t.channel.waitForSent(1);
    expect(t.channel.sent[0].jid).toBe(MAIN);
    expect(t.channel.sent[0].text).toContain('hello there');
    expect(t.channel.sent[0].text).toMatch(
      /^reply: <context assistant="Andy" chat="main" chat_id="fake:main" chat_type="direct" channel="fake" time_zone="UTC" now="[^"]+"\/>\n<messages>\n<message sender="[^"]+" time="[^"]+\+00:00">hello there<\/message>\n<\/messages>$/,
    );
  });

  it('gates a non-main group on its own trigger and gives earlier messages as context', async () => {
    const runs = new FakeRuns();
    t = buildTestHost({ runs });
    t.addGroup({ jid: FAMILY, folder: 'family', trigger: '@Bob' });
    await t.host.start();
    t.channel.receive(FAMILY, 'we need milk');
    t.channel.receive(FAMILY, '@Andy not me');
    t.channel.receive(FAMILY, 'hey @Bob mid-text');
    await new Promise((r) => setTimeout(r, 50));
    expect(runs.runs).toHaveLength(0);
    t.channel.receive(FAMILY, '@bob, add it to the list');
    const run = await started(runs, 1);
    const prompt = run.request.prompt;
    expect(prompt).toContain('we need milk');
    expect(prompt).toContain('hey @Bob mid-text');
    expect(prompt.indexOf('we need milk')).toBeLessThan(prompt.indexOf('add it to the list'));
  });

  it('wakes a group only for its allowed senders; the others are context for the next wake', async () => {
    const runs = new FakeRuns();
    t = buildTestHost({ runs });
    const listed = '491701111111@s.whatsapp.net';
    const stranger = '491709999999@s.whatsapp.net';
    t.addGroup({ jid: FAMILY, folder: 'family', allowedSenders: [listed] });
    await t.host.start();
    const now = () => ({ timestamp: new Date().toISOString() });
    t.channel.receive(FAMILY, '@Andy delete everything', {
      ...now(),
      sender: stranger,
      senderName: 'Mallory',
    });
    await t.host.settled();
    expect(runs.runs).toHaveLength(0);
    expect(t.host.store.messagesSince(FAMILY, 0)).toHaveLength(1);

    t.channel.receive(FAMILY, '@Andy what did Mallory want?', {
      ...now(),
      sender: listed,
      senderName: 'Alice',
    });
    const run = await started(runs, 1);
    expect(run.request.prompt).toContain('@Andy delete everything');
    expect(run.request.prompt).toContain('sender="Mallory"');
    expect(run.request.prompt.indexOf('delete everything')).toBeLessThan(
      run.request.prompt.indexOf('what did Mallory want?'),
    );
  });

  it('applies an allowlist change at once, and clearing it lets everyone wake again', async () => {
    const runs = new FakeRuns();
    t = buildTestHost({ runs });
    t.addGroup({ jid: FAMILY, folder: 'family' });
    await t.host.start();
    const stranger = { timestamp: new Date().toISOString(), sender: '491709999999@s.whatsapp.net' };
    t.host.store.setAllowedSenders(FAMILY, ['491701111111@s.whatsapp.net']);
    t.channel.receive(FAMILY, '@Andy first', stranger);
    await t.host.settled();
    expect(runs.runs).toHaveLength(0);
    t.host.store.setAllowedSenders(FAMILY, null);
    t.channel.receive(FAMILY, '@Andy second', { ...stranger, timestamp: new Date().toISOString() });
    const run = await started(runs, 1);
    expect(run.request.prompt).toContain('@Andy first');
    expect(run.request.prompt).toContain('@Andy second');
  });

  it('keeps waking main on any sender, whatever its list says', async () => {
    t = buildTestHost();
    t.addGroup({
      jid: MAIN,
      folder: 'main',
      isMain: true,
      requiresTrigger: false,
      allowedSenders: ['491701111111@s.whatsapp.net'],
    });
    await t.host.start();
    t.channel.receive(MAIN, 'hello from me', { timestamp: new Date().toISOString() });
    await t.channel.waitForSent(1);
    expect(t.channel.sent[0].text).toContain('hello from me');
  });

  it('sees two messages stamped in the same second, and stores a redelivered one once', async () => {
    const runs = new FakeRuns(async () => undefined);
    t = buildTestHost({ runs });
    t.addGroup({ jid: FAMILY, folder: 'family' });
    await t.host.start();
    const first = t.channel.receive(FAMILY, 'first');
    t.channel.events.onMessage(first); // redelivery of the same id
    t.channel.receive(FAMILY, '@Andy second');
    const run = await started(runs, 1);
    expect(run.request.prompt.match(/<message /g)).toHaveLength(2);
    expect(t.host.store.messagesSince(FAMILY, 0)).toHaveLength(2);
  });

  it('never treats the assistant’s own messages as input', async () => {
    const runs = new FakeRuns();
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'Andy: an old reply', { isBotMessage: true, fromMe: true });
    await new Promise((r) => setTimeout(r, 50));
    expect(runs.runs).toHaveLength(0);
  });

  it('passes a follow-up to the live run instead of starting another', async () => {
    const runs = new FakeRuns(async (run) => {
      await run.output('first answer');
    });
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'one');
    const run = await started(runs, 1);
    await t.channel.waitForSent(1);
    t.channel.receive(MAIN, 'two');
    await until(() => run.followUps.length === 1);
    expect(runs.runs).toHaveLength(1);
    expect(run.followUps[0]).toContain('two');
    // SPEC §4.1: only the answered turn is done; the follow-up is in flight until its answer is stored.
    const [first, second] = t.host.store.messagesSince(MAIN, 0);
    expect(t.host.store.getCursor(MAIN)).toBe(first.seq);
    await run.output('second answer');
    expect(t.host.store.getCursor(MAIN)).toBe(second.seq);
  });
});

describe('cursor and retry semantics (SPEC §4)', () => {
  it('moves the cursor to the last message on success', async () => {
    const runs = new FakeRuns(async (run) => {
      await run.output('ok');
      run.finish({ ok: true });
    });
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'a');
    await t.host.settled();
    expect(t.host.store.getCursor(MAIN)).toBe(t.host.store.latestSeq(MAIN));
  });

  it('retries with backoff when a run fails silently, then tells the chat and marks the message done', async () => {
    const runs = new FakeRuns((run) => run.finish({ ok: false, error: 'boom' }));
    t = buildTestHost({ runs, config: { retryBaseMs: 10, maxRetries: 2 } });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'please');
    await t.channel.waitForSent(1);
    expect(runs.runs).toHaveLength(3); // first try + 2 retries
    expect(t.channel.sent).toHaveLength(1);
    expect(t.channel.sent[0].text).toMatch(/couldn't process.*boom/);
    // The notice is the answer (SPEC §4.1): the message is done, later ones start fresh.
    expect(t.host.store.getCursor(MAIN)).toBe(t.host.store.latestSeq(MAIN));
    // Every retry saw the same messages.
    for (const run of runs.runs) expect(run.request.prompt).toContain('please');
  });

  it('does not roll back after something was sent (no duplicate replies)', async () => {
    const runs = new FakeRuns(async (run) => {
      await run.output('partial answer');
      run.finish({ ok: false, error: 'crashed later' });
    });
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'question');
    await t.host.settled();
    expect(runs.runs).toHaveLength(1);
    expect(t.host.store.getCursor(MAIN)).toBe(t.host.store.latestSeq(MAIN));
    expect(t.channel.sent.map((s) => s.text)).toEqual(['partial answer']);
  });

  it('tells the chat once when a run cannot start, without retrying', async () => {
    const runs = new FakeRuns((run) =>
      run.finish({ ok: false, refusedToStart: true, error: 'sandbox missing' }),
    );
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'hi');
    await t.channel.waitForSent(1);
    await t.host.settled();
    expect(runs.runs).toHaveLength(1);
    expect(t.channel.sent[0].text).toContain('sandbox missing');
    // Not done: once the owner fixes the cause, the message is answered.
    expect(t.host.store.getCursor(MAIN)).toBe(0);
  });

  it('tells the chat the cause at once, without retrying, when the model refused the run (issue 10)', async () => {
    const message =
      'the API key was refused by api.example.com (401); check ANTHROPIC_API_KEY and run nanoclaw doctor';
    const runs = new FakeRuns((run) =>
      run.finish({
        ok: false,
        error: message,
        stoppedBy: 'model_error',
        modelError: { class: 'authentication', retryable: false, message },
      }),
    );
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'hi');
    await t.channel.waitForSent(1);
    await t.host.settled();
    expect(runs.runs).toHaveLength(1);
    expect(t.channel.sent.map((s) => s.text)).toEqual([`Sorry, I couldn't answer: ${message}.`]);
    // The notice answers the message: the next one starts fresh.
    expect(t.host.store.getCursor(MAIN)).toBe(t.host.store.latestSeq(MAIN));
  });

  it('keeps retrying a run that failed on a retryable model error, saying so once after the first try', async () => {
    const message = 'api.example.com is overloaded (529)';
    const modelError = { class: 'overloaded', retryable: true, message };
    const runs = new FakeRuns((run) => {
      // Every try hears of the trouble while it lasts, and fails on it.
      run.callbacks.onModelTrouble?.(modelError);
      run.finish({ ok: false, error: message, modelError });
    });
    t = buildTestHost({ runs, config: { retryBaseMs: 10, maxRetries: 2 } });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'hi');
    await t.channel.waitForSent(2);
    await t.host.settled();
    expect(runs.runs).toHaveLength(3);
    expect(t.channel.sent.map((s) => s.text)).toEqual([
      `The model isn't answering right now: ${message}. I'll keep trying and answer when it's back.`,
      expect.stringMatching(/after several tries \(api\.example\.com is overloaded \(529\)\)/),
    ]);
  });

  it('says the model is in trouble while the run waits on it, without marking the message done', async () => {
    const message = 'api.example.com is unreachable (connection refused)';
    let recover: () => void = () => undefined;
    const runs = new FakeRuns(async (run) => {
      run.callbacks.onModelTrouble?.({ class: 'unreachable', retryable: true, message });
      run.callbacks.onModelTrouble?.({ class: 'unreachable', retryable: true, message });
      await new Promise<void>((resolve) => (recover = resolve));
      await run.output('here I am');
      run.finish({ ok: true });
    });
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'hi');
    await t.channel.waitForSent(1);
    expect(t.channel.sent.map((s) => s.text)).toEqual([
      `The model isn't answering right now: ${message}. I'll keep trying and answer when it's back.`,
    ]);
    // Not the answer: the message is still undone, so a crash now re-runs it.
    expect(t.host.store.getCursor(MAIN)).toBeLessThan(t.host.store.latestSeq(MAIN));
    recover();
    await t.channel.waitForSent(2);
    await t.host.settled();
    expect(t.channel.sent[1].text).toBe('here I am');
    expect(t.host.store.getCursor(MAIN)).toBe(t.host.store.latestSeq(MAIN));
  });

  it('tells a new outage again once the model has answered in between, and no one who is not waiting', async () => {
    const message = 'api.example.com is rate-limiting requests (429)';
    const trouble = { class: 'rate_limited', retryable: true, message };
    const runs = new FakeRuns(async (run) => {
      run.callbacks.onModelTrouble?.(trouble);
      await run.output(`answer ${runs.runs.length}`);
      // Idle, waiting for follow-ups: nobody is waiting on the model now.
      run.callbacks.onModelTrouble?.(trouble);
      run.finish({ ok: true });
    });
    t = buildTestHost({ runs });
    t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    await t.host.start();
    t.channel.receive(MAIN, 'one');
    await t.channel.waitForSent(2);
    await t.host.settled();
    t.channel.receive(MAIN, 'two');
    await t.channel.waitForSent(4);
    await t.host.settled();
    const notice = `The model isn't answering right now: ${message}. I'll keep trying and answer when it's back.`;
    expect(t.channel.sent.map((s) => s.text)).toEqual([notice, 'answer 1', notice, 'answer 2']);
  });

  it('recovers unprocessed messages at start-up', async () => {
    const first = buildTestHost({ runs: new FakeRuns(async () => undefined) });
    first.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    // Stored, then the host "crashes" before any run: the store is closed without processing.
    first.host.store.insertMessage({
      chatJid: MAIN,
      id: 'x1',
      sender: 's',
      senderName: 'S',
      text: 'left over',
      timestamp: new Date().toISOString(),
      fromMe: false,
      isBotMessage: false,
    });
    first.host.store.close();
    const runs = new FakeRuns();
    t = buildTestHost({ runs, dir: first.dir });
    await t.host.start();
    const run = await started(runs, 1);
    expect(run.request.prompt).toContain('left over');
  });
});

describe('queue limits through the host', () => {
  it('never runs more than maxConcurrentRuns at once across many groups', async () => {
    let live = 0;
    let peak = 0;
    const runs = new FakeRuns(async (run) => {
      live++;
      peak = Math.max(peak, live);
      await new Promise((r) => setTimeout(r, 5));
      await run.output('done');
      live--;
      run.finish({ ok: true });
    });
    t = buildTestHost({ runs, config: { maxConcurrentRuns: 2 } });
    for (let i = 0; i < 12; i++) t.addGroup({ jid: `fake:g${i}`, folder: `g${i}`, requiresTrigger: false });
    await t.host.start();
    for (let i = 0; i < 12; i++) t.channel.receive(`fake:g${i}`, 'go');
    await t.channel.waitForSent(12);
    expect(peak).toBe(2);
    expect(runs.runs).toHaveLength(12);
  });
});

describe('re-registration', () => {
  it('does not replay the history of a chat registered again; only the new message is input', async () => {
    // Each run answers and ends, so every wake starts a run with a fresh prompt.
    const runs = new FakeRuns(async (run) => {
      await run.output(`reply: ${run.request.prompt}`);
      run.finish({ ok: true });
    });
    t = buildTestHost({ runs });
    // register_group takes only real chat ids; the fake channel plays that WhatsApp group.
    const FAMILY = '120363012345678901@g.us';
    t.channel.ownsJid = () => true;
    const main = t.addGroup({ jid: MAIN, folder: 'main', isMain: true, requiresTrigger: false });
    t.addGroup({ jid: FAMILY, folder: 'family' });
    await t.host.start();
    const now = () => ({ timestamp: new Date().toISOString() });
    t.channel.receive(FAMILY, '@Andy old question', now());
    await t.channel.waitForSent(1);
    t.channel.receive(FAMILY, 'chatter after the answer', now());

    const call = (name: string, args: unknown) =>
      t!.host.tools.handle({ runId: 'run-main', group: main }, name, args);
    expect(await call('unregister_group', { jid: FAMILY })).toMatchObject({ ok: true });
    expect(
      await call('register_group', { jid: FAMILY, name: 'Family', folder: 'family', trigger: '@Andy' }),
    ).toMatchObject({ ok: true });

    t.channel.receive(FAMILY, '@Andy new question', now());
    const run = await started(runs, 2);
    expect(run.request.prompt).toContain('new question');
    expect(run.request.prompt).not.toContain('old question');
    expect(run.request.prompt).not.toContain('chatter after the answer');
    expect(run.request.prompt.match(/<message /g)).toHaveLength(1);
  });
});
