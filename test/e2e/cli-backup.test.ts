// `nanoclaw backup` beside a running host and `nanoclaw restore` into a fresh
// home, with the shipped CLI: the restored install answers in the same group,
// with its memory folder and its agent session, and the archive is 0600.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ChatSession, makeCliHome, runCli, type CliHome } from '../support/cli.js';

const homes: CliHome[] = [];
const sessions: ChatSession[] = [];
beforeAll(() => assertBuilt());
afterEach(() => {
  for (const s of sessions.splice(0)) s.child.kill('SIGKILL');
  for (const h of homes.splice(0)) h.cleanup();
});

function newHome(): CliHome {
  const h = makeCliHome();
  homes.push(h);
  return h;
}

describe('nanoclaw backup / restore', () => {
  it('backs up while the host runs; a restore into a fresh home answers with the same group, memory and session', async () => {
    const home = newHome();
    home.writeConfig({ retryBaseMs: 100 });
    const host = new ChatSession(home.env);
    sessions.push(host);
    host.send({ text: 'first' });
    await host.waitFor((lines) => lines.some((l) => l.text.endsWith('echo: first')));
    // The group's memory, as the agent would have written it.
    fs.writeFileSync(path.join(home.dir, 'groups', 'main', 'notes.md'), 'remember: blue\n');
    const sessionFile = path.join('data', 'sessions', 'main', '.claude', 'marker.json');
    fs.mkdirSync(path.dirname(path.join(home.dir, sessionFile)), { recursive: true });
    fs.writeFileSync(path.join(home.dir, sessionFile), '{"session":1}');
    const auth = path.join(home.dir, 'store', 'auth');
    fs.mkdirSync(auth, { recursive: true });
    fs.writeFileSync(path.join(auth, 'creds.json'), '{"me":"test"}');

    const file = path.join(home.dir, 'nanoclaw.tar.gz');
    const backup = await runCli(['backup', file], home.env);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toContain('WhatsApp keys');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);

    // The running host is untouched by the backup, and a restore beside it is refused.
    host.send({ text: 'second' });
    await host.waitFor((lines) => lines.some((l) => l.text.endsWith('echo: second')));
    const beside = await runCli(['restore', file, '--force'], home.env);
    expect(beside.code).toBe(2);
    expect(beside.stderr).toContain(`another nanoclaw host is running (pid ${host.child.pid})`);
    expect(await host.end()).toBe(0);

    const fresh = newHome();
    const restored = await runCli(['restore', file], fresh.env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(fs.readFileSync(path.join(fresh.dir, 'groups', 'main', 'notes.md'), 'utf8')).toBe(
      'remember: blue\n',
    );
    expect(fs.readFileSync(path.join(fresh.dir, 'store', 'auth', 'creds.json'), 'utf8')).toBe(
      '{"me":"test"}',
    );
    expect(JSON.parse(fs.readFileSync(path.join(fresh.dir, 'policy', 'config.json'), 'utf8'))).toEqual({
      retryBaseMs: 100,
    });

    const groups = await runCli(['groups', 'list'], fresh.env);
    expect(groups.stdout).toContain('local:main');
    // The restored session is resumed: the echo engine says so.
    const chat = await runCli(['chat', '--json'], fresh.env, '{"text":"after restore"}\n');
    expect(chat.code, chat.stderr).toBe(0);
    const answer = JSON.parse(chat.stdout.trim().split('\n').at(-1) ?? '{}') as {
      chat: string;
      text: string;
    };
    expect(answer.chat).toBe('local:main');
    expect(answer.text).toMatch(/^resumed echo-session-/);
    expect(answer.text).toContain('echo: after restore');

    // A second restore over the now non-empty home needs --force.
    const again = await runCli(['restore', file], fresh.env);
    expect(again.code).toBe(2);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toContain('pass --force to replace it');
    const forced = await runCli(['restore', file, '--force'], fresh.env);
    expect(forced.code, forced.stderr).toBe(0);
  }, 90_000);

  it('says what to do for a missing file, a missing database and a wrong archive', async () => {
    const home = newHome();
    const none = await runCli(['backup', path.join(home.dir, 'b.tgz')], home.env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('nothing to back up');
    const missing = await runCli(['restore', path.join(home.dir, 'nope.tgz')], home.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such backup file');
    const bogus = path.join(home.dir, 'bogus.tgz');
    fs.mkdirSync(path.join(home.dir, 'x'));
    fs.writeFileSync(path.join(home.dir, 'x', 'hello.txt'), 'hi');
    expect(runTar(['-czf', bogus, '-C', path.join(home.dir, 'x'), 'hello.txt'])).toBe(0);
    const wrong = await runCli(['restore', bogus], home.env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('is not a nanoclaw backup');
    for (const r of [none, missing, wrong]) expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});

function runTar(args: string[]): number | null {
  return spawnSync('tar', args).status;
}
