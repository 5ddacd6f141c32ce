// Orphan clean-up is keyed by the runs dir: a sandbox, run dir or cgroup of
// another data dir is never touched, and the current host's children are live.
// A fake /proc (real files) stands in for the process table.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupBwrapOrphans, scanSandboxes } from '../../../src/sandbox/orphans.js';

let root: string;
beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-orphans-'))));
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function fakeProcess(procDir: string, pid: number, ppid: number, runId: string): void {
  const dir = path.join(procDir, String(pid));
  fs.mkdirSync(dir, { recursive: true });
  const argv = ['/usr/bin/bwrap', '--setenv', 'NANOCLAW_RUN_ID', runId, '--', 'node', 'runner.mjs'];
  fs.writeFileSync(path.join(dir, 'cmdline'), `${argv.join('\0')}\0`);
  fs.writeFileSync(path.join(dir, 'stat'), `${pid} (bwrap) S ${ppid} 1 1 0`);
}

describe('orphan clean-up', () => {
  it("kills only its own runs dir's orphans and leaves another data dir's sandboxes and run dirs alone", () => {
    const procDir = path.join(root, 'proc');
    const mine = path.join(root, 'a', 'data', 'runs');
    const theirs = path.join(root, 'b', 'data', 'runs');
    for (const dir of [
      path.join(mine, 'main-dead'),
      path.join(mine, 'main-live'),
      path.join(theirs, 'main-other'),
    ]) {
      fs.mkdirSync(dir, { recursive: true });
    }
    fakeProcess(procDir, 101, 1, 'main-dead'); // left by a dead host of this data dir
    fakeProcess(procDir, 102, 500, 'main-live'); // a child of this host (pid 500)
    fakeProcess(procDir, 103, 900, 'main-other'); // a live host of another data dir

    const scan = scanSandboxes({ runsDir: mine, selfPid: 500, procDir });
    expect(scan.orphans).toEqual([{ pid: 101, runId: 'main-dead' }]);
    expect(scan.live).toEqual([{ pid: 102, runId: 'main-live' }]);

    const killed: number[] = [];
    const gone: string[] = [];
    const count = cleanupBwrapOrphans({
      runsDir: mine,
      selfPid: 500,
      procDir,
      kill: (pid) => killed.push(pid),
      onRunGone: (runId) => gone.push(runId),
    });
    expect(count).toBe(1);
    expect(killed).toEqual([101]);
    // Cgroups are released per run id: only this data dir's dead run.
    expect([...new Set(gone)]).toEqual(['main-dead']);
    expect(fs.existsSync(path.join(mine, 'main-dead'))).toBe(false);
    expect(fs.existsSync(path.join(mine, 'main-live'))).toBe(true);
    expect(fs.existsSync(path.join(theirs, 'main-other'))).toBe(true);
  });
});
