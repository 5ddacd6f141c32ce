// SPEC §12 storage rows through the real CLI (real SQLite, real sandbox, echo
// engine): a full disk (a small tmpfs under the data dir; CI runs as root), a
// read-only data dir, damaged and truncated database files, and admin
// commands racing a busy host. The host survives, loses nothing, and every
// refusal names the file, the problem and the fix — never a stack trace.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ChatSession, makeCliHome, runCli, type CliHome } from '../support/cli.js';

let home: CliHome | undefined;
let mounted: string | undefined;
beforeAll(() => {
  assertBuilt();
  if (process.getuid?.() !== 0)
    throw new Error('the storage fault tests mount a tmpfs: run them as root (CI does)');
});
afterEach(() => {
  if (mounted) execFileSync('umount', ['-l', mounted]);
  mounted = undefined;
  home?.cleanup();
  home = undefined;
});

/** The data dir's store/ on its own small tmpfs, so the disk can be filled and made read-only. */
function smallDisk(h: CliHome, sizeMb: number): string {
  const store = path.join(h.dir, 'store');
  fs.mkdirSync(store, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700`, 'tmpfs', store]);
  mounted = store;
  return store;
}

/** Fills the disk holding `dir` to the last byte; returns the filler to delete. */
function fillDisk(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  // Small writes may still fit in a partial block: fill that too.
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(512, 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

function noStackTrace(text: string): void {
  expect(text).not.toMatch(/^\s+at .+\(.*:\d+:\d+\)$/m);
  expect(text).not.toMatch(/SqliteError/);
}

describe('a full disk (SPEC §12)', () => {
  it('keeps the host running, holds what it cannot store, and answers everything once space is back', async () => {
    home = makeCliHome({ LOG_LEVEL: 'info' });
    home.writeConfig({ minFreeDiskMb: 1 });
    const store = smallDisk(home, 8);
    const chat = new ChatSession(home.env);
    chat.send({ text: 'before' });
    await chat.waitFor((lines) => lines.some((l) => l.text === 'echo: before'));

    // A reply produced while the disk fills, and messages arriving on the full disk.
    chat.send({ text: 'slow\n/sleep 1500' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const filler = fillDisk(store);
    chat.send({ text: 'during one' });
    chat.send({ text: 'during two' });
    // Both paths are hit: the inbound events and the reply produced meanwhile are held in memory.
    await chat.waitFor(
      () => chat.stderr.includes('could not store a message') && chat.stderr.includes('answers are held'),
      30_000,
    );
    expect(chat.child.exitCode).toBeNull(); // still running

    fs.rmSync(filler);
    await chat.waitFor(
      (lines) => ['during one', 'during two', 'slow'].every((t) => lines.some((l) => l.text.includes(t))),
      60_000,
    );
    expect(await chat.end()).toBe(0);
    const texts = chat.lines.map((l) => l.text);
    for (const t of ['before', 'slow', 'during one', 'during two']) {
      expect(
        texts.filter((x) => x.includes(t)),
        t,
      ).toHaveLength(1);
    }
    noStackTrace(
      chat.stderr
        .split('\n')
        .filter((l) => !l.startsWith('{'))
        .join('\n'),
    );

    // The owner sees it in the audit log once space is back.
    const audit = await runCli(['audit', '--json'], home.env);
    expect(audit.stdout).toMatch(/"action":"storage"/);
  }, 180_000);

  it('a disk too full to open the database: says so plainly, and starts once there is room', async () => {
    home = makeCliHome();
    home.writeConfig({ minFreeDiskMb: 1 });
    const store = smallDisk(home, 8);
    const first = await runCli(['chat', '--json'], home.env, '{"text":"first"}\n');
    expect(first.code, first.stderr).toBe(0);
    // SQLite needs a few KB for its WAL index: on a disk with none left it cannot open at all.
    for (const suffix of ['-wal', '-shm'])
      fs.rmSync(path.join(store, `nanoclaw.db${suffix}`), { force: true });
    const filler = fillDisk(store);
    const refused = await runCli(['chat', '--json'], home.env, '{"text":"on a full disk"}\n');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/disk holding .*nanoclaw\.db is full\. Free some space/);
    noStackTrace(refused.stderr);
    fs.rmSync(filler);
    const after = await runCli(['chat', '--json'], home.env, '{"text":"room again"}\n');
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain('echo: room again');
  }, 120_000);

  it('doctor reports the free space and fails below the reserve', async () => {
    home = makeCliHome();
    home.writeConfig({ minFreeDiskMb: 4 });
    const store = smallDisk(home, 8);
    const ok = await runCli(['doctor'], home.env);
    expect(ok.stdout).toMatch(/ok {3}disk: \d+ MB free/);
    fillDisk(store);
    const low = await runCli(['doctor'], home.env);
    expect(low.code).not.toBe(0);
    expect(low.stdout).toMatch(/FAIL disk: only 0 MB free.*reserve of 4 MB/);
  }, 60_000);
});

describe('damaged or read-only storage (SPEC §12)', () => {
  async function seed(h: CliHome): Promise<string> {
    const first = await runCli(['chat', '--json'], h.env, '{"text":"hello"}\n');
    expect(first.code, first.stderr).toBe(0);
    return path.join(h.dir, 'store', 'nanoclaw.db');
  }

  it('a read-only data dir: the message names the file, the problem and the fix', async () => {
    home = makeCliHome();
    const store = smallDisk(home, 8);
    const db = await seed(home);
    execFileSync('mount', ['-o', 'remount,ro', store]);
    for (const args of [
      ['chat', '--json'],
      ['groups', 'list'],
    ]) {
      const result = await runCli(args, home.env, '{"text":"hi"}\n');
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stderr).toContain(db);
      expect(result.stderr).toMatch(/read-only/);
      expect(result.stderr).toMatch(/writable|remount/);
      noStackTrace(result.stderr);
    }
    const doctor = await runCli(['doctor'], home.env);
    expect(doctor.code).not.toBe(0);
    expect(doctor.stdout).toMatch(/FAIL database: .*read-only/);
  }, 60_000);

  it.each([
    ['not a database at all', (db: string) => fs.writeFileSync(db, 'this is not sqlite '.repeat(500))],
    [
      'a truncated database',
      (db: string) => {
        const size = fs.statSync(db).size;
        fs.truncateSync(db, Math.floor(size / 3));
      },
    ],
    [
      'a database with a damaged page',
      (db: string) => {
        const fd = fs.openSync(db, 'r+');
        fs.writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 1024);
        fs.closeSync(fd);
      },
    ],
  ])(
    '%s: a clear message, no stack trace, and doctor says the same',
    async (_what, damage) => {
      home = makeCliHome();
      const db = await seed(home);
      // Checkpoint so the damage hits the main file, not a WAL that would mask it.
      const quiet = await runCli(['groups', 'list'], home.env);
      expect(quiet.code).toBe(0);
      for (const suffix of ['-wal', '-shm']) fs.rmSync(`${db}${suffix}`, { force: true });
      damage(db);
      const result = await runCli(['chat', '--json'], home.env, '{"text":"hi"}\n');
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(db);
      expect(result.stderr).toMatch(/damaged/);
      expect(result.stderr).toMatch(/backup/);
      noStackTrace(result.stderr);
      const doctor = await runCli(['doctor'], home.env);
      expect(doctor.code).not.toBe(0);
      expect(doctor.stdout).toMatch(/FAIL database: .*damaged/);
    },
    60_000,
  );
});

describe('admin commands beside a busy host (BEGIN IMMEDIATE)', () => {
  it('never fail with "database is locked"', async () => {
    home = makeCliHome();
    const chat = new ChatSession(home.env);
    chat.send({ text: 'warm up' });
    await chat.waitFor((lines) => lines.length >= 1);
    const burst = Array.from({ length: 40 }, (_, i) => `burst ${i}`);
    for (const text of burst) chat.send({ text });
    const commands = [];
    for (let i = 0; i < 6; i++) {
      commands.push(
        runCli(
          ['groups', 'add', `local:g${i}`, '--name', `G${i}`, '--folder', `g${i}`, '--no-trigger'],
          home.env,
        ),
        runCli(['groups', 'list'], home.env),
        runCli(['tasks', 'list'], home.env),
        runCli(['audit'], home.env),
        runCli(['groups', 'budget', 'local:main', String(100_000 + i)], home.env),
      );
    }
    const results = await Promise.all(commands);
    for (const result of results) {
      expect(result.stderr).not.toMatch(/locked|busy/i);
      expect(result.code, result.stderr).toBe(0);
    }
    await chat.waitFor((lines) => burst.every((t) => lines.some((l) => l.text.includes(t))), 60_000);
    expect(await chat.end()).toBe(0);
  }, 120_000);
});
