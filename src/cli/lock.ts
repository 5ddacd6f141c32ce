// One host per data dir. The lock is a kernel lock, not a marker file: an
// exclusive SQLite lock (POSIX fcntl) on `data/host.lock`, held by an open
// connection for the host's whole life. The kernel drops it the moment the
// holder dies — kill -9 included — so there is no stale lock to detect, no pid
// to trust, and two hosts started at the same instant cannot both win. Beside
// it, `data/host.pid` names the holder (pid, start time) for the refusal
// message only; it is advisory and never decides who holds the lock.

import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { writeFileAtomic } from '../runs/files.js';
import { storageProblem } from '../store/errors.js';
import { HostLockedError, type LockHolder } from './context.js';

export { HostLockedError };

export const LOCK_FILE = 'host.lock';
export const HOLDER_FILE = 'host.pid';

export interface HostLock {
  readonly holder: LockHolder;
  /** Idempotent; the kernel releases the lock anyway when the process ends. */
  release(): void;
}

export interface AcquireOptions {
  dataDir: string;
  pid: number;
  now: () => Date;
  /** Tells the user what else to do, e.g. "or talk to it through its channels". */
  what: string;
  /** How long to wait for the holder's pid file after it took the lock (ms). */
  holderWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Returns [0, 1): the jitter of a retry after a collision. */
  random?: () => number;
}

function readHolder(dataDir: string): LockHolder | null {
  try {
    const raw = JSON.parse(fs.readFileSync(path.join(dataDir, HOLDER_FILE), 'utf8')) as Partial<LockHolder>;
    if (typeof raw.pid !== 'number' || typeof raw.startedAt !== 'string') return null;
    return { pid: raw.pid, startedAt: raw.startedAt };
  } catch {
    return null;
  }
}

/** Written whole (tmp, fsync, rename) so a reader never sees half a pid. */
function writeHolder(dataDir: string, holder: LockHolder): void {
  writeFileAtomic(path.join(dataDir, HOLDER_FILE), `${JSON.stringify(holder)}\n`);
}

/** One try at the exclusive lock (timeout 0: a held lock is an answer); null when busy. */
function tryLock(file: string): Database.Database | null {
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // In exclusive locking mode the lock taken by this transaction is kept until close.
    db.exec('BEGIN EXCLUSIVE; COMMIT;');
    return db;
  } catch (err) {
    db.close();
    if (storageProblem(err) !== 'busy') throw err;
    return null;
  }
}

/** Takes the data dir's lock or throws HostLockedError naming the holder. */
export async function acquireHostLock(opts: AcquireOptions): Promise<HostLock> {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const file = path.join(opts.dataDir, LOCK_FILE);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // Two hosts starting at the same instant can both see "busy" (each holds a shared lock
  // while it asks for the exclusive one), so busy is tried again with a jittered pause:
  // a real holder keeps the lock, a collision clears in milliseconds. The holder writes
  // its pid file just after taking the lock, so the wait also lets the refusal name it.
  const random = opts.random ?? Math.random;
  let taken = tryLock(file);
  let seen: LockHolder | null = null;
  for (let waitedMs = 0; !taken && waitedMs < (opts.holderWaitMs ?? 1000);) {
    const pauseMs = 20 + Math.floor(random() * 40);
    await sleep(pauseMs);
    waitedMs += pauseMs;
    taken = tryLock(file);
    seen = taken ? null : readHolder(opts.dataDir);
    if (seen && waitedMs >= 200) break;
  }
  if (!taken) throw new HostLockedError(seen ?? readHolder(opts.dataDir), opts.dataDir, opts.what);
  const db = taken;
  const holder = { pid: opts.pid, startedAt: opts.now().toISOString() };
  try {
    writeHolder(opts.dataDir, holder);
  } catch (err) {
    db.close();
    throw err;
  }
  let held = true;
  return {
    holder,
    release: () => {
      if (!held) return;
      held = false;
      // The pid file goes first: once the lock is free, the file may be the next host's.
      fs.rmSync(path.join(opts.dataDir, HOLDER_FILE), { force: true });
      db.close();
    },
  };
}
