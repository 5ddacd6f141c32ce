// One host per data dir (issue 10), with the shipped CLI as child processes:
// a second `start` refuses and names the first, a second `chat` attaches to it
// instead of starting a host, and neither touches its live sandboxes; a kill
// -9'd host's lock is free for the next one; of two started at once, exactly
// one runs. The real bwrap sandbox and the runner's `echo` engine.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { scanSandboxes } from '../../src/sandbox/orphans.js';
import { assertBuilt, ChatSession, makeCliHome, runCli, type CliHome } from '../support/cli.js';
import { until } from '../support/until.js';

let home: CliHome;
const sessions: ChatSession[] = [];
beforeAll(() => assertBuilt());
afterEach(() => {
  for (const s of sessions.splice(0)) s.child.kill('SIGKILL');
  home?.cleanup();
});

function chat(env: NodeJS.ProcessEnv): ChatSession {
  const s = new ChatSession(env);
  sessions.push(s);
  return s;
}

/** The sandboxes (bwrap pids) the host `hostPid` runs for this home's runs dir. */
function liveSandboxes(hostPid: number): number[] {
  const runsDir = path.join(home.dir, 'data', 'runs');
  return scanSandboxes({ runsDir, selfPid: hostPid }).live.map((s) => s.pid);
}

function openFiles(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return ''; // closed meanwhile
    }
  });
}

/** The processes holding this home's host lock open (the running host, if any). */
function lockHolders(): number[] {
  const lockFile = path.join(home.dir, 'data', 'host.lock');
  return fs
    .readdirSync('/proc')
    .filter((name) => /^[0-9]+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return openFiles(pid).includes(lockFile);
      } catch {
        return false; // gone, or not ours to read
      }
    });
}

function expectRefusal(stderr: string, pid: number): void {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toContain(`another nanoclaw host is running (pid ${pid})`);
  expect(lines[0]).toContain('stop it first');
}

describe('one host per data dir', () => {
  it('beside a running host, start refuses with its pid, chat attaches, and its live sandbox stays alive', async () => {
    home = makeCliHome();
    const first = chat(home.env);
    const hostPid = first.child.pid ?? 0;
    first.send({ text: '/sleep 4000\nslow one' });
    await until(() => liveSandboxes(hostPid).length > 0, 20_000, 'the first host runs a sandbox');
    const running = liveSandboxes(hostPid);
    // The host holds the lock's fd; it is close-on-exec, so no sandbox does.
    const lockFile = path.join(home.dir, 'data', 'host.lock');
    expect(openFiles(hostPid)).toContain(lockFile);
    for (const pid of running) expect(openFiles(pid)).not.toContain(lockFile);

    // The second chat is a console of the first host: its line is answered there, by one host.
    const second = await runCli(['chat', '--json'], home.env, '{"text":"hello"}\n');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('"text":"echo: hello"');
    expect(lockHolders()).toEqual([hostPid]);
    // `start` too, before anything else (even before asking to link WhatsApp).
    const start = await runCli(['start'], home.env);
    expect(start.code).toBe(2);
    expectRefusal(start.stderr, hostPid);

    // The old bug: the second host "cleaned up" these as orphans (SIGKILL mid-run).
    for (const pid of running) expect(fs.existsSync(`/proc/${pid}`), `sandbox ${pid}`).toBe(true);
    await first.waitFor((lines) => lines.some((l) => l.text.includes('slow one')));
    expect(await first.end()).toBe(0);
  }, 60_000);

  it('the next host starts at once after a kill -9, and a clean exit or a signal releases the lock', async () => {
    home = makeCliHome();
    const first = chat(home.env);
    first.send({ text: 'before' });
    await first.waitFor((lines) => lines.some((l) => l.text === 'echo: before'));
    first.child.kill('SIGKILL');
    await first.exited;
    // The dead host's pid file stays behind; it must not matter.
    expect(fs.existsSync(path.join(home.dir, 'data', 'host.pid'))).toBe(true);

    const next = await runCli(['chat', '--json'], home.env, '{"text":"after"}\n');
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toContain('echo: after');
    expect(fs.existsSync(path.join(home.dir, 'data', 'host.pid'))).toBe(false);

    const again = await runCli(['chat', '--json'], home.env, '{"text":"again"}\n');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('echo: again');

    // A signal ends the host through process.exit: the pid file still goes.
    const signalled = chat(home.env);
    signalled.send({ text: 'then a signal' });
    await signalled.waitFor((lines) => lines.some((l) => l.text.endsWith('echo: then a signal')));
    expect(fs.existsSync(path.join(home.dir, 'data', 'host.pid'))).toBe(true);
    signalled.child.kill('SIGTERM');
    expect(await signalled.exited).toBe(0);
    expect(fs.existsSync(path.join(home.dir, 'data', 'host.pid'))).toBe(false);
  }, 60_000);

  it('of two chats started at the same moment, exactly one is the host and the other its console', async () => {
    home = makeCliHome();
    for (let round = 0; round < 3; round++) {
      const pair = [chat(home.env), chat(home.env)];
      pair[0].send({ text: `round ${round} a` });
      pair[1].send({ text: `round ${round} b` });
      // Each gets its own answer (the loser waits for the winner's socket, which a loaded
      // machine may take seconds to open); the host's terminal sees both.
      await pair[0].waitFor((lines) => lines.some((l) => l.text.endsWith(`echo: round ${round} a`)), 60_000);
      await pair[1].waitFor((lines) => lines.some((l) => l.text.endsWith(`echo: round ${round} b`)), 60_000);
      const holders = lockHolders();
      expect(holders).toHaveLength(1);
      expect(pair.map((s) => s.child.pid)).toContain(holders[0]);
      const consoleIndex = pair[0].child.pid === holders[0] ? 1 : 0;
      const hostSession = pair[1 - consoleIndex];
      for (const letter of ['a', 'b']) {
        await hostSession.waitFor((lines) =>
          lines.some((l) => l.text.endsWith(`echo: round ${round} ${letter}`)),
        );
      }
      // The console ends first: the host must outlive it.
      expect(await pair[consoleIndex].end(), pair[consoleIndex].stderr).toBe(0);
      expect(await pair[1 - consoleIndex].end()).toBe(0);
    }
  }, 240_000);
});
