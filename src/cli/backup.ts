// `nanoclaw backup <file>` and `nanoclaw restore <file>`: one archive holds
// everything needed to bring an install back — an online SQLite backup of the
// store (consistent while the host runs: SQLite's backup API reads a snapshot
// beside the WAL writer), the group folders (memory), the agent sessions, the
// WhatsApp keys and the policy files. Because of the keys the archive is a
// secret: it is created 0600. It is written to `<file>.tmp`, fsynced, renamed.
// Restore takes the data dir's host lock, so it never runs beside a host, and
// refuses to replace an existing install without --force.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EGRESS_ALLOWLIST_FILE } from '../broker/egress-allowlist.js';
import { CONFIG_FILE_NAME, type Config } from '../config/config.js';
import { MOUNT_ALLOWLIST_FILE } from '../sandbox/mount-policy.js';
import type { Print } from './admin.js';
import { CliError } from './context.js';
import { acquireHostLock } from './lock.js';
import { parseCommandArgs, usageError } from './commands/args.js';

const MANIFEST = 'nanoclaw-backup.json';
const FORMAT = 1;
const POLICY_FILES = [CONFIG_FILE_NAME, MOUNT_ALLOWLIST_FILE, EGRESS_ALLOWLIST_FILE];

export const BACKUP_USAGE = `usage: nanoclaw backup <file>

  Writes one archive (tar.gz, mode 0600) with the database (a consistent copy,
  also while the host runs), groups/ (memory), data/sessions/, store/auth/ (the
  WhatsApp keys: keep the archive secret) and the policy files.`;

export const RESTORE_USAGE = `usage: nanoclaw restore <file> [--force]

  Restores an archive made by nanoclaw backup into this NANOCLAW_HOME and policy
  dir. Refuses while a host runs here, and refuses to replace an existing install
  unless --force is given. Existing policy files are kept unless --force.`;

interface Manifest {
  format: number;
  createdAt: string;
}

/** Where each part lives in the archive, relative to its `home/`. */
function homeParts(config: Config): Array<{ rel: string; abs: string }> {
  const rel = (abs: string) => path.relative(config.homeDir, abs);
  return [config.paths.groupsDir, config.paths.sessionsDir, config.paths.authDir].map((abs) => ({
    rel: rel(abs),
    abs,
  }));
}

function parse(args: string[], command: 'backup' | 'restore'): { file: string; force: boolean } | null {
  const parsed = parseCommandArgs(command, {
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      ...(command === 'restore' ? { force: { type: 'boolean' } } : {}),
    },
  });
  if (parsed.values.help) return null;
  if (parsed.positionals.length !== 1)
    throw usageError(command, 'expected one archive file, e.g. ~/nanoclaw-backup.tar.gz');
  return {
    file: path.resolve(parsed.positionals[0]),
    force: (parsed.values as { force?: boolean }).force === true,
  };
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function tar(args: string[], what: string): void {
  const result = spawnSync('tar', args, { encoding: 'utf8' });
  if (result.error) throw new CliError(`nanoclaw: cannot run tar (${result.error.message}); install tar`);
  if (result.status !== 0) throw new CliError(`nanoclaw: ${what} failed: ${result.stderr.trim()}`);
}

/** A running agent may change files under us: say so, and that a second try usually works. */
async function copyOrExplain(what: string, copy: () => Promise<void>): Promise<void> {
  try {
    await copy();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new CliError(
      `nanoclaw: backing up ${what} failed (${String(code ?? (err as Error).message)}); it may have changed while being copied: run nanoclaw backup again`,
    );
  }
}

function isNonEmpty(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory() ? fs.readdirSync(p).length > 0 : true;
  } catch {
    return false;
  }
}

export async function backupCommand(
  args: string[],
  config: Config,
  print: Print,
  now: () => Date,
): Promise<number> {
  const opts = parse(args, 'backup');
  if (!opts) {
    print(BACKUP_USAGE);
    return 0;
  }
  const { dbPath } = config.paths;
  if (!fs.existsSync(dbPath)) {
    throw new CliError(`nanoclaw: nothing to back up: no database at ${dbPath}; check NANOCLAW_HOME`);
  }
  const dest = opts.file;
  if (!fs.existsSync(path.dirname(dest))) {
    throw new CliError(`nanoclaw: no such directory: ${path.dirname(dest)}; create it first`, 2);
  }
  const tmp = `${dest}.tmp`;
  const staging = fs.mkdtempSync(path.join(path.dirname(dest), '.nanoclaw-backup-'));
  try {
    const home = path.join(staging, 'home');
    fs.mkdirSync(path.join(home, 'store'), { recursive: true });
    await copyOrExplain(dbPath, async () => {
      const db = new Database(dbPath, { fileMustExist: true, timeout: 5000 });
      try {
        await db.backup(path.join(home, 'store', path.basename(dbPath)));
      } finally {
        db.close();
      }
    });
    for (const part of homeParts(config)) {
      if (!fs.existsSync(part.abs)) continue;
      await copyOrExplain(part.abs, async () =>
        fs.cpSync(part.abs, path.join(home, part.rel), { recursive: true, verbatimSymlinks: true }),
      );
    }
    fs.mkdirSync(path.join(staging, 'config'));
    for (const name of POLICY_FILES) {
      const from = path.join(config.configDir, name);
      if (fs.existsSync(from)) fs.copyFileSync(from, path.join(staging, 'config', name));
    }
    const manifest: Manifest = { format: FORMAT, createdAt: now().toISOString() };
    fs.writeFileSync(path.join(staging, MANIFEST), `${JSON.stringify(manifest)}\n`);

    // Created 0600 before tar writes into it (tar truncates, keeping the mode).
    fs.rmSync(tmp, { force: true });
    fs.closeSync(fs.openSync(tmp, 'wx', 0o600));
    tar(['-czf', tmp, '-C', staging, MANIFEST, 'home', 'config'], 'writing the archive');
    fsyncPath(tmp);
    fs.renameSync(tmp, dest);
    fsyncPath(path.dirname(dest));
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    fs.rmSync(tmp, { force: true });
  }
  const auth = fs.existsSync(config.paths.authDir) ? ' It holds your WhatsApp keys: keep it secret.' : '';
  print(`backed up to ${dest} (${fs.statSync(dest).size} bytes, mode 0600).${auth}`);
  return 0;
}

export async function restoreCommand(
  args: string[],
  config: Config,
  print: Print,
  now: () => Date,
): Promise<number> {
  const opts = parse(args, 'restore');
  if (!opts) {
    print(RESTORE_USAGE);
    return 0;
  }
  if (!fs.existsSync(opts.file)) throw new CliError(`nanoclaw: no such backup file: ${opts.file}`, 2);
  const lock = await acquireHostLock({
    dataDir: config.paths.dataDir,
    pid: process.pid,
    now,
    what: 'before restoring',
  });
  let staging: string | null = null;
  try {
    const { dbPath } = config.paths;
    const parts = homeParts(config);
    const existing = [dbPath, ...parts.map((p) => p.abs)].filter(isNonEmpty);
    if (existing.length > 0 && !opts.force) {
      throw new CliError(
        `nanoclaw: ${config.homeDir} already holds an install (${existing.join(', ')}); restore into an empty NANOCLAW_HOME, or pass --force to replace it`,
        2,
      );
    }
    fs.mkdirSync(config.homeDir, { recursive: true });
    staging = fs.mkdtempSync(path.join(config.homeDir, '.nanoclaw-restore-'));
    tar(['-xzpf', opts.file, '-C', staging], 'reading the archive');
    let manifest: Partial<Manifest> = {};
    try {
      manifest = JSON.parse(fs.readFileSync(path.join(staging, MANIFEST), 'utf8')) as Partial<Manifest>;
    } catch {
      throw new CliError(`nanoclaw: ${opts.file} is not a nanoclaw backup (no ${MANIFEST})`, 2);
    }
    if (manifest.format !== FORMAT) {
      throw new CliError(
        `nanoclaw: ${opts.file} has backup format ${manifest.format}; this nanoclaw reads ${FORMAT}`,
        2,
      );
    }

    // The old database's WAL must not be replayed onto the restored one.
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${dbPath}${suffix}`, { force: true });
    fs.mkdirSync(path.dirname(dbPath), { recursive: true });
    fs.renameSync(path.join(staging, 'home', path.relative(config.homeDir, dbPath)), dbPath);
    for (const part of parts) {
      const staged = path.join(staging, 'home', part.rel);
      fs.rmSync(part.abs, { recursive: true, force: true });
      if (!fs.existsSync(staged)) continue;
      fs.mkdirSync(path.dirname(part.abs), { recursive: true });
      fs.renameSync(staged, part.abs);
    }
    const kept: string[] = [];
    fs.mkdirSync(config.configDir, { recursive: true });
    for (const name of POLICY_FILES) {
      const staged = path.join(staging, 'config', name);
      const target = path.join(config.configDir, name);
      if (!fs.existsSync(staged)) continue;
      if (fs.existsSync(target) && !opts.force) kept.push(name);
      else fs.copyFileSync(staged, target);
    }
    print(`restored the backup of ${manifest.createdAt ?? 'unknown date'} into ${config.homeDir}`);
    if (kept.length > 0) {
      print(`kept your existing ${kept.join(', ')} in ${config.configDir} (--force replaces them)`);
    }
    return 0;
  } finally {
    if (staging) fs.rmSync(staging, { recursive: true, force: true });
    lock.release();
  }
}
