// The control socket (issue 10), black-box through the shipped CLI: while a
// host runs, `groups`, `tasks`, `audit`, `doctor` run inside it and their
// changes take effect at once (a new group answers, a task added or resumed
// fires without a restart); `chat` attaches as a console; the socket is the
// owner's only. Real host, real SQLite, real bwrap with the `echo` engine.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_VERSION } from '../../src/core/control.js';
import { assertBuilt, ChatSession, makeCliHome, runCli, type CliHome } from '../support/cli.js';

let home: CliHome;
const sessions: ChatSession[] = [];
beforeAll(() => assertBuilt());
afterEach(() => {
  for (const s of sessions.splice(0)) s.child.kill('SIGKILL');
  home?.cleanup();
});

async function runningHost(): Promise<ChatSession> {
  const host = new ChatSession(home.env);
  sessions.push(host);
  host.send({ text: 'warm up' });
  // A host after an earlier one resumes its session: the answer may start with that note.
  await host.waitFor((lines) => lines.some((l) => l.text.endsWith('echo: warm up')), 60_000);
  return host;
}

function socketPath(): string {
  return path.join(home.dir, 'data', 'control', 'host.sock');
}

/** One raw request line to the socket; resolves with the first reply line. */
function rawRequest(line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath());
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      socket.destroy();
      resolve(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
    });
    socket.on('error', reject);
    socket.write(`${line}\n`);
  });
}

describe('the control socket of a running host', () => {
  it('is owner-only, and removed when the host exits', async () => {
    home = makeCliHome();
    const host = await runningHost();
    expect(fs.lstatSync(socketPath()).isSocket()).toBe(true);
    expect(fs.statSync(socketPath()).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(socketPath())).mode & 0o777).toBe(0o700);
    expect(await host.end()).toBe(0);
    expect(fs.existsSync(socketPath())).toBe(false);
  }, 60_000);

  it('a group added from the CLI answers at once, with no restart', async () => {
    home = makeCliHome();
    const host = await runningHost();
    const added = await runCli(
      ['groups', 'add', 'local:family', '--name', 'Family', '--folder', 'family', '--trigger', '@Andy'],
      home.env,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('registered local:family');
    host.send({ text: '@Andy are you there?', chat: 'local:family', sender: 'bob' });
    await host.waitFor((lines) =>
      lines.some((l) => l.chat === 'local:family' && l.text.includes('are you there?')),
    );
    // Listing goes through the host too, and sees the same state.
    const listed = await runCli(['groups', 'list', '--json'], home.env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('"jid":"local:family"');
    expect(await host.end()).toBe(0);
  }, 60_000);

  it('a task added, paused and resumed from the CLI reaches the running scheduler without a restart', async () => {
    home = makeCliHome();
    home.writeConfig({ minTaskIntervalMs: 1_000 });
    const host = await runningHost();
    const dueAt = new Date(Date.now() + 3_000).toISOString();
    const added = await runCli(
      ['tasks', 'add', '--group', 'main', '--prompt', 'first-task-ping', '--at', dueAt],
      home.env,
    );
    expect(added.code, added.stderr).toBe(0);
    // Nothing else wakes the scheduler: only the re-armed timer can fire this one.
    await host.waitFor((lines) => lines.some((l) => l.text.includes('first-task-ping')), 30_000);

    // Pause and resume an interval task. Judged by the runs the host records, so a slow CLI on a
    // loaded machine cannot make it flaky: no run of the task may start after the pause returned.
    const every = await runCli(
      ['tasks', 'add', '--group', 'main', '--prompt', 'interval-ping', '--every', '2s'],
      home.env,
    );
    expect(every.code, every.stderr).toBe(0);
    const id = /scheduled (\S+) in main/.exec(every.stdout)?.[1] ?? '';
    expect(id).not.toBe('');
    const pings = (): number => host.lines.filter((l) => l.text.includes('interval-ping')).length;
    await host.waitFor(() => pings() > 0, 30_000);
    const paused = await runCli(['tasks', 'pause', id], home.env);
    expect(paused.code, paused.stderr).toBe(0);
    const pausedAtMs = Date.now();
    // Three periods of the task: a running scheduler would have started it again by now.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const runs = await runCli(['runs', '--json', '--limit', '500'], home.env);
    expect(runs.code, runs.stderr).toBe(0);
    const startedAfterPause = runs.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { taskId: string | null; startedAtMs: number })
      .filter((r) => r.taskId === id && r.startedAtMs > pausedAtMs);
    expect(startedAfterPause).toEqual([]);
    const before = pings();
    const resumed = await runCli(['tasks', 'resume', id], home.env);
    expect(resumed.code, resumed.stderr).toBe(0);
    await host.waitFor(() => pings() > before, 30_000);
    expect(await host.end()).toBe(0);
  }, 90_000);

  it('refuses a request of another protocol version with a plain fix, and malformed ones', async () => {
    home = makeCliHome();
    await runningHost();
    const wrongVersion = await rawRequest(
      JSON.stringify({ v: CONTROL_VERSION + 1, id: 7, op: 'command', args: { argv: ['groups', 'list'] } }),
    );
    expect(wrongVersion).toMatchObject({ id: 7, ok: false, error: { code: 'E_CONTROL_VERSION' } });
    expect(JSON.stringify(wrongVersion)).toMatch(/restart the host/);
    const malformed = await rawRequest(JSON.stringify({ v: CONTROL_VERSION, id: 8, op: 'format-disk' }));
    expect(malformed).toMatchObject({ id: 8, ok: false, error: { code: 'E_CONTROL_REQUEST' } });
    // A command the host does not run for clients: refused inside, with exit 2.
    const start = await rawRequest(
      JSON.stringify({ v: CONTROL_VERSION, id: 9, op: 'command', args: { argv: ['start'] } }),
    );
    expect(start).toMatchObject({ id: 9, ok: true, result: { exitCode: 2 } });
  }, 60_000);

  it('a dead host leaves its socket file behind; the next host replaces it, and refuses a non-socket there', async () => {
    home = makeCliHome();
    const first = await runningHost();
    first.child.kill('SIGKILL');
    await first.exited;
    expect(fs.lstatSync(socketPath()).isSocket()).toBe(true);
    // Nobody listens: a command works on the data dir directly, under the lock.
    const listed = await runCli(['groups', 'list'], home.env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('local:main');
    const second = await runningHost();
    expect(await second.end()).toBe(0);

    fs.writeFileSync(socketPath(), 'not a socket');
    const refused = await runCli(['chat', '--json'], home.env, '{"text":"hi"}\n');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is not a socket; move it away');
    expect(fs.readFileSync(socketPath(), 'utf8')).toBe('not a socket');
  }, 60_000);
});

describe('nanoclaw chat on a terminal', () => {
  it('greets with how to quit, keeps log lines out of the conversation, and ends at /exit', async () => {
    home = makeCliHome();
    const result = await runCli(['chat'], home.env, 'hello there\n/exit\nnever sent\n');
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Talking to Andy in .*Type \/exit or press Ctrl-D to quit\.$/);
    expect(result.stdout).toContain('Andy: echo: hello there');
    expect(result.stdout).not.toContain('never sent');
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/"level":/);
    const log = fs.readFileSync(path.join(home.dir, 'logs', 'nanoclaw.log'), 'utf8');
    expect(log).toContain('host ready');
  }, 60_000);

  it('attached to a running host: the same greeting, answers, and /exit leaves the host running', async () => {
    home = makeCliHome();
    const host = await runningHost();
    const result = await runCli(['chat'], home.env, 'from the second terminal\n/exit\n');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/through the running host\)\. Type \/exit or press Ctrl-D to quit\./);
    expect(result.stdout).toContain('Andy: echo: from the second terminal');
    // The host's own console saw the exchange too (one conversation, main's).
    await host.waitFor((lines) => lines.some((l) => l.text === 'echo: from the second terminal'));
    host.send({ text: 'still here' });
    await host.waitFor((lines) => lines.some((l) => l.text === 'echo: still here'));
    expect(await host.end()).toBe(0);
  }, 60_000);
});
