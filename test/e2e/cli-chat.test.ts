// `nanoclaw chat --json` as a child process: the shipped CLI, the real host,
// real SQLite and the real bwrap sandbox, with the runner's `echo` engine
// standing in for the model.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ChatSession, makeCliHome, runCli, type CliHome } from '../support/cli.js';
import { startFakeModelServer } from '../support/fake-model-server.js';
import { until } from '../support/until.js';

let home: CliHome;
beforeAll(() => assertBuilt());
afterEach(() => home?.cleanup());

describe('nanoclaw chat --json', () => {
  it('answers each line, then exits 0 once everything is delivered', async () => {
    home = makeCliHome();
    const result = await runCli(
      ['chat', '--json'],
      home.env,
      '{"text":"hello world"}\n{"text":"and more"}\n',
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ chat: 'local:main', text: 'echo: hello world', id: expect.any(Number) });
    expect(lines.map((l) => l.text).join('\n')).toContain('and more');
  });

  it('reports a bad input line clearly and loses nothing else', async () => {
    home = makeCliHome();
    const input = [
      'not json',
      '{"text": 5}',
      '{"text":"valid one"}',
      '{"text":"x","chat":"local:nobody"}',
    ].join('\n');
    const result = await runCli(['chat', '--json'], home.env, `${input}\n`);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('not JSON');
    expect(result.stderr).toContain('field "text" must be a string');
    expect(result.stderr).toContain('"local:nobody" is not a registered group');
    expect(
      result.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toMatchObject([{ chat: 'local:main', text: 'echo: valid one' }]);
  });

  it('gates a registered local group on its trigger and includes earlier messages as context', async () => {
    home = makeCliHome();
    const added = await runCli(
      ['groups', 'add', 'local:family', '--name', 'Family', '--folder', 'family', '--trigger', '@Andy'],
      home.env,
    );
    expect(added.code).toBe(0);
    const input = [
      { text: 'we need milk', sender: 'bob', chat: 'local:family' },
      { text: 'hey @Andy mid-text does not wake', sender: 'bob', chat: 'local:family' },
      { text: '@andy add it to the list', sender: 'alice', chat: 'local:family' },
    ]
      .map((m) => JSON.stringify(m))
      .join('\n');
    const result = await runCli(['chat', '--json'], home.env, `${input}\n`);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0].chat).toBe('local:family');
    expect(lines[0].text).toBe(
      'echo: we need milk\nhey @Andy mid-text does not wake\n@andy add it to the list',
    );
  });

  it('passes a follow-up to the live run (one sandbox, not two)', async () => {
    home = makeCliHome();
    const chat = new ChatSession(home.env);
    chat.send({ text: 'first' });
    await chat.waitFor((lines) => lines.length >= 1);
    chat.send({ text: 'second' });
    await chat.waitFor((lines) => lines.length >= 2);
    expect(await chat.end()).toBe(0);
    // The echo engine numbers its sessions per process: both answers came from one.
    expect(chat.lines.map((l) => l.text)).toEqual(['echo: first', 'echo: second']);
    const sessions = await runCli(['usage', '--json'], home.env);
    expect(sessions.code).toBe(0);
  });

  it('schedules a task through the agent tool and delivers its output when it fires', async () => {
    home = makeCliHome();
    const chat = new ChatSession(home.env);
    const at = new Date(Date.now() + 2000).toISOString();
    chat.send({
      text: `/tool schedule_task {"prompt":"task says hi","schedule_type":"once","schedule_value":"${at}","context_mode":"isolated"}`,
    });
    await chat.waitFor((lines) => lines.some((l) => l.text.includes('tool schedule_task ok')));
    await chat.waitFor((lines) => lines.some((l) => l.text === 'echo: task says hi'));
    expect(await chat.end()).toBe(0);
    const tasks = await runCli(['tasks', 'list'], home.env);
    expect(tasks.stdout).toContain('completed');
  });

  it('retries a crashing run with backoff, then tells the chat', async () => {
    home = makeCliHome();
    home.writeConfig({ retryBaseMs: 50, maxRetries: 2 });
    const result = await runCli(['chat', '--json'], home.env, '{"text":"/crash"}\n');
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0].text).toMatch(/couldn't process your last messages after several tries/);
  });

  it('refuses to start on a corrupt config, naming the file and the line', async () => {
    home = makeCliHome();
    const file = path.join(home.env.NANOCLAW_CONFIG_DIR!, 'config.json');
    fs.writeFileSync(file, '{\n  "maxConcurrentRuns": 2,\n  "idleTimeoutMs": ,\n}\n');
    const result = await runCli(['chat', '--json'], home.env, '{"text":"hi"}\n');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toMatch(/line 3|:3/);
    expect(result.stdout).toBe('');
  });
});

/** Pids of every process whose command line mentions `needle`, and all their descendants. */
function processTree(needle: string): number[] {
  const all = fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => {
      try {
        const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
        const ppid = Number(fs.readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
        return { pid: Number(name), ppid, cmdline };
      } catch {
        return null; // exited while we looked
      }
    })
    .filter((p): p is { pid: number; ppid: number; cmdline: string } => p !== null);
  const tree = new Set(all.filter((p) => p.cmdline.includes(needle)).map((p) => p.pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!tree.has(p.pid) && tree.has(p.ppid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return [...tree];
}

describe('shutdown (SPEC §5.5)', () => {
  it('on SIGTERM kills a run that does not finish within the grace, leaving no sandbox process behind', async () => {
    home = makeCliHome();
    home.writeConfig({ shutdownGraceMs: 500 });
    const chat = new ChatSession(home.env);
    chat.send({ text: '/sleep 60000' });
    const runsDir = path.join(home.dir, 'data', 'runs');
    await until(() => fs.existsSync(runsDir) && fs.readdirSync(runsDir).length > 0, 10_000, 'a live run');
    // bwrap's argv names the run (NANOCLAW_RUN_ID, its dir under runs/; host paths stay off
    // argv); the runner is its descendant.
    const runId = fs.readdirSync(runsDir)[0];
    await until(() => processTree(runId).length >= 2, 10_000, 'the sandbox processes');
    const sandbox = processTree(runId);
    const stoppedAt = Date.now();
    chat.child.kill('SIGTERM');
    expect(await chat.exited).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
    await until(() => sandbox.every((pid) => !fs.existsSync(`/proc/${pid}`)), 3000, 'sandbox processes gone');
  });
});

describe('a database from a newer NanoClaw (SPEC §12)', () => {
  it('is refused with a clear message and left untouched', async () => {
    home = makeCliHome();
    const dbPath = path.join(home.dir, 'store', 'nanoclaw.db');
    fs.mkdirSync(path.dirname(dbPath), { recursive: true });
    const db = new Database(dbPath);
    db.pragma('user_version = 99');
    db.close();
    const result = await runCli(['chat', '--json'], home.env, '{"text":"hi"}\n');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/schema version 99, this NanoClaw knows up to \d+; upgrade NanoClaw/);
    const after = new Database(dbPath, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(99);
    after.close();
  });
});

describe('running without a sandbox (SPEC §10.7)', () => {
  it('is refused unless the owner opted in, and then warns at every start', async () => {
    home = makeCliHome({ NANOCLAW_SANDBOX: 'none' });
    const refused = await runCli(['chat', '--json'], home.env, '{"text":"hi"}\n');
    expect(refused.code).toBe(0);
    expect(JSON.parse(refused.stdout.trim()).text).toMatch(/couldn't start/);

    home.writeConfig({ allowUnsandboxedMain: true });
    const allowed = await runCli(['chat', '--json'], home.env, '{"text":"again"}\n');
    expect(allowed.stderr).toMatch(/WARNING.*sandbox/i);
    // The message refused before was kept: it is answered now, together with the new one.
    const texts = allowed.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { text: string }).text)
      .join('\n');
    expect(texts).toContain('hi');
    expect(texts).toContain('again');
    expect(texts.startsWith('echo: ')).toBe(true);
  });
});

describe('admin commands', () => {
  it('doctor says which sandbox and why, and fails when the credential is missing', async () => {
    home = makeCliHome({ NANOCLAW_ENGINE: 'claude-code' });
    const result = await runCli(['doctor'], home.env);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ok {3}sandbox: bwrap/);
    expect(result.stdout).toMatch(/FAIL credential: missing/);
    // doctor also asks the model upstream (no tokens spent): a local fake one that accepts.
    const upstream = await startFakeModelServer({ script: [] });
    const withKey = await runCli(['doctor'], {
      ...home.env,
      ANTHROPIC_API_KEY: 'sk-ant-secret-value',
      ANTHROPIC_BASE_URL: upstream.url,
    }).finally(() => upstream.close());
    expect(withKey.code, withKey.stdout).toBe(0);
    expect(withKey.stdout).toContain('ANTHROPIC_API_KEY present (from env)');
    expect(withKey.stdout).not.toContain('sk-ant-secret-value');
  });

  it('start without a linked WhatsApp account says what to run, and exits (no loop)', async () => {
    home = makeCliHome();
    const result = await runCli(['start'], home.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('nanoclaw auth whatsapp');
  });

  it('groups add validates the folder with an example, and tasks/audit report empty states', async () => {
    home = makeCliHome();
    const bad = await runCli(['groups', 'add', 'local:x', '--name', 'X', '--folder', 'Bad Folder'], home.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/folder.*e\.g\./);
    expect((await runCli(['tasks', 'list'], home.env)).stdout).toContain('no tasks');
    expect((await runCli(['audit', '--since', '24h'], home.env)).stdout).toContain('no audit records');
    const badSince = await runCli(['audit', '--since', 'yesterday'], home.env);
    expect(badSince.code).toBe(2);
  });
});
