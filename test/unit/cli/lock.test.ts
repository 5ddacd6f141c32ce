// The data dir's host lock in one process: held until released, refusals name
// the holder and say what to do; separate data dirs do not share a lock.
// (Across processes, kill -9 and races: test/e2e/host-lock.test.ts.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireHostLock, HOLDER_FILE, HostLockedError } from '../../../src/cli/lock.js';

let root: string;
beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-lock-'))));
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const at = new Date('2026-11-30T12:00:00Z');
const take = (dataDir: string, pid: number, holderWaitMs = 0) =>
  acquireHostLock({ dataDir, pid, now: () => at, what: 'or talk to it', holderWaitMs });

describe('host lock', () => {
  it('refuses a second holder with its pid and exit 2 until the first releases', async () => {
    const dataDir = path.join(root, 'data');
    const first = await take(dataDir, 4242);
    expect(JSON.parse(fs.readFileSync(path.join(dataDir, HOLDER_FILE), 'utf8'))).toEqual({
      pid: 4242,
      startedAt: at.toISOString(),
    });
    const refused = await take(dataDir, 7).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(HostLockedError);
    expect((refused as HostLockedError).exitCode).toBe(2);
    expect((refused as HostLockedError).message).toBe(
      `nanoclaw: another nanoclaw host is running (pid 4242) on ${dataDir}; stop it first (kill 4242) or talk to it`,
    );
    first.release();
    first.release();
    expect(fs.existsSync(path.join(dataDir, HOLDER_FILE))).toBe(false);
    const second = await take(dataDir, 7);
    expect(second.holder.pid).toBe(7);
    second.release();
  });

  it('still refuses when the holder has not written its pid yet, and data dirs are independent', async () => {
    const dataDir = path.join(root, 'data');
    const first = await take(dataDir, 1);
    fs.rmSync(path.join(dataDir, HOLDER_FILE));
    await expect(take(dataDir, 2)).rejects.toThrow('another nanoclaw host is running (pid unknown)');
    const other = await take(path.join(root, 'other-data'), 3);
    other.release();
    first.release();
  });
});
