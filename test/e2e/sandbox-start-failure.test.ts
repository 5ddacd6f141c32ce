// Sandbox start failures reach the chat and `nanoclaw doctor` with their real
// cause and fix (issue 10): the shipped CLI, running as root, real bwrap and
// the echo engine. A data dir under a 0700 parent (mktemp -d) is named with
// the chmod that fixes it; the directories NanoClaw itself created 0700 (a
// umask of 077) are repaired by the host, secrets stay owner-only.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { assertBuilt, ChatSession, CLI, type CliResult } from '../support/cli.js';

const BWRAP = '/usr/bin/bwrap';

beforeAll(() => {
  assertBuilt();
  if (spawnSync(BWRAP, ['--version']).status !== 0) {
    throw new Error(
      `bubblewrap is required for this test but ${BWRAP} does not run; install it (apt-get install bubblewrap)`,
    );
  }
  // The sandbox user differs from the host only when the host is root: the case under test.
  if (process.getuid?.() !== 0) throw new Error('this test must run as root (as CI does)');
});

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

/** A 0700 parent, exactly as `mktemp -d` makes it, with NANOCLAW_HOME below it. */
function blockedWorld(): { parent: string; home: string; env: NodeJS.ProcessEnv } {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-blocked-'));
  roots.push(parent);
  expect(fs.statSync(parent).mode & 0o777).toBe(0o700);
  const home = path.join(parent, 'home');
  const policy = path.join(parent, 'policy');
  fs.mkdirSync(policy, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: parent,
    NANOCLAW_HOME: home,
    NANOCLAW_CONFIG_DIR: policy,
    TZ: 'UTC',
    NANOCLAW_ENGINE: 'echo',
  };
  return { parent, home, env };
}

/** The CLI under `umask 077`, so every directory it creates starts out 0700. */
function runCli077(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', 'umask 077 && exec "$@"', 'sh', process.execPath, CLI, ...args], {
      env,
      cwd: '/',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nanoclaw ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

const mode = (p: string): number => fs.statSync(p).mode & 0o777;

describe('sandbox start failures', () => {
  it('names the 0700 parent and the chmod in the chat reply and in doctor, and changes nothing outside its data dir', async () => {
    const { parent, env } = blockedWorld();
    const chat = await runCli077(['chat', '--json'], env, '{"text":"hello"}\n');
    expect(chat.code).toBe(0);
    const replies = chat.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { text: string }).text);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatch(/^I couldn't start: /);
    expect(replies[0]).toContain(`cannot enter ${parent} `);
    expect(replies[0]).toContain(`\`chmod o+x ${parent}\``);
    expect(replies[0]).not.toMatch(/user namespaces|at .*\.js:\d+/);
    expect(mode(parent)).toBe(0o700);

    const doctor = await runCli077(['doctor'], env);
    expect(doctor.code).toBe(1);
    const sandboxLine = doctor.stdout.split('\n').find((l) => l.startsWith('FAIL sandbox:'));
    expect(sandboxLine).toContain(`\`chmod o+x ${parent}\``);
    expect(doctor.stdout).toMatch(new RegExp(`FAIL sandbox access: .*chmod o\\+x ${parent}`));
  });

  it('probes again at the next message once the owner ran the fix: no restart needed', async () => {
    const { parent, home, env } = blockedWorld();
    fs.mkdirSync(home, { mode: 0o700 });
    const session = new ChatSession(env);
    try {
      session.send({ text: 'first' });
      const [refusal] = await session.waitFor((lines) => lines.length >= 1);
      expect(refusal.text).toContain(`\`chmod o+x ${parent}\``);

      fs.chmodSync(parent, 0o711);
      session.send({ text: 'second' });
      const lines = await session.waitFor((all) => all.some((l) => l.text.startsWith('echo:')));
      expect(lines.find((l) => l.text.startsWith('echo:'))?.text).toContain('second');
      expect(mode(home)).toBe(0o711);
    } finally {
      expect(await session.end()).toBe(0);
    }
  });

  it('repairs the data dirs it created 0700, keeps its secrets 0600, and then answers', async () => {
    const { parent, home, env } = blockedWorld();
    fs.chmodSync(parent, 0o711); // the owner ran the command the first test got
    const chat = await runCli077(['chat', '--json'], env, '{"text":"hello"}\n');
    expect(chat.stdout).toContain('echo: hello');
    expect(chat.code).toBe(0);
    // Created 0700 under umask 077, opened just enough for the sandbox user.
    expect(mode(home)).toBe(0o711);
    expect(mode(path.join(home, 'data'))).toBe(0o711);
    expect(mode(path.join(home, 'groups'))).toBe(0o755);
    // The home itself is created 0711 from the start; what the host made 0700 under it is repaired.
    expect(chat.stderr).toContain(
      `made ${path.join(home, 'data')} passable for the sandbox user: mode 0700 -> 0711`,
    );
    // The database and its directory stay the owner's alone.
    expect(mode(path.join(home, 'store'))).toBe(0o700);
    expect(mode(path.join(home, 'store', 'nanoclaw.db'))).toBe(0o600);
    expect(mode(parent)).toBe(0o711);

    const doctor = await runCli077(['doctor'], env);
    expect(doctor.stdout).toMatch(/^ok {3}sandbox: bwrap/m);
    expect(doctor.stdout).toMatch(/^ok {3}sandbox access: the data directory and the install are reachable/m);
  });
});
