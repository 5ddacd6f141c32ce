// Finds bwrap sandboxes left behind by a previous host process. A process only
// counts as ours when its argv[0] is bwrap AND it names a run whose directory
// exists directly under this host's runs dir (`--setenv NANOCLAW_RUN_ID <id>`;
// bwrap's other options travel on a pipe so host paths stay out of its argv; the
// older shape bound `<runsDir>/<id>` at /run/nanoclaw) — and it is not a child of
// the current host (those are live runs). Killing the outer
// bwrap takes the whole sandbox with it (--die-with-parent, own pid namespace).
// Callers must hold the data dir's host lock (src/cli/lock.ts): only then is a
// sandbox of this runs dir that is not our child provably a dead host's.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { SANDBOX_PATHS } from './mounts.js';
import { readProcStat } from './sandbox-exit.js';

/**
 * A short id of a runs dir, stamped on container sandboxes (docker label, apple
 * name) so one data dir's clean-up never removes another data dir's containers.
 */
export function runsDirOwnerId(runsDir: string): string {
  return createHash('sha256').update(path.resolve(runsDir)).digest('hex').slice(0, 12);
}

export interface SandboxProcess {
  pid: number;
  runId: string;
}

export interface OrphanScanOptions {
  runsDir: string;
  /** The current host; its children are live runs, never orphans. */
  selfPid: number;
  procDir?: string;
}

function readArgv(procDir: string, pid: string): string[] | null {
  try {
    const raw = fs.readFileSync(path.join(procDir, pid, 'cmdline'), 'utf8');
    return raw.split('\0').filter((a, i, all) => i < all.length - 1 || a !== '');
  } catch {
    return null;
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The run id a bwrap argv belongs to: it names a run dir of `runsDir`, or binds one at /run/nanoclaw. */
export function runIdFromArgv(argv: readonly string[], runsDir: string): string | null {
  if (argv.length === 0 || path.basename(argv[0]) !== 'bwrap') return null;
  const root = path.resolve(runsDir);
  for (let i = 1; i + 2 < argv.length; i++) {
    if (argv[i] === '--') break;
    if (argv[i] === '--setenv' && argv[i + 1] === 'NANOCLAW_RUN_ID') {
      const id = argv[i + 2];
      if (id && !id.includes('/') && id !== '.' && id !== '..' && isDir(path.join(root, id))) return id;
    }
    if ((argv[i] === '--ro-bind' || argv[i] === '--bind') && argv[i + 2] === SANDBOX_PATHS.socketDir) {
      const src = path.resolve(argv[i + 1]);
      if (path.dirname(src) === root) return path.basename(src);
    }
  }
  return null;
}

/** Lists sandboxes of this runs dir; `orphans` excludes the current host's children. */
export function scanSandboxes(opts: OrphanScanOptions): {
  live: SandboxProcess[];
  orphans: SandboxProcess[];
} {
  const procDir = opts.procDir ?? '/proc';
  const live: SandboxProcess[] = [];
  const orphans: SandboxProcess[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(procDir).filter((e) => /^\d+$/.test(e));
  } catch {
    return { live, orphans };
  }
  for (const pid of entries) {
    if (Number(pid) === opts.selfPid) continue;
    const argv = readArgv(procDir, pid);
    if (!argv) continue;
    const runId = runIdFromArgv(argv, opts.runsDir);
    if (!runId) continue;
    const entry = { pid: Number(pid), runId };
    if (readProcStat(procDir, pid)?.ppid === opts.selfPid) live.push(entry);
    else orphans.push(entry);
  }
  return { live, orphans };
}

export interface CleanupOptions extends OrphanScanOptions {
  kill?: (pid: number) => void;
  /** Called for each orphaned run after its sandbox is killed (e.g. to drop its cgroup). */
  onRunGone?: (runId: string) => void;
}

/**
 * Kills leftover sandboxes and removes run dirs no live sandbox uses; returns how
 * many sandboxes were killed. Meant for host start, before any run is started.
 */
export function cleanupBwrapOrphans(opts: CleanupOptions): number {
  const kill = opts.kill ?? ((pid: number) => process.kill(pid, 'SIGKILL'));
  const { live, orphans } = scanSandboxes(opts);
  let killed = 0;
  for (const o of orphans) {
    try {
      kill(o.pid);
      killed++;
    } catch {
      // Already gone.
    }
  }
  const liveRuns = new Set(live.map((l) => l.runId));
  let dirs: fs.Dirent[] = [];
  try {
    dirs = fs.readdirSync(opts.runsDir, { withFileTypes: true });
  } catch {
    // No runs dir yet: nothing to remove.
  }
  for (const d of dirs) {
    if (!d.isDirectory() || liveRuns.has(d.name)) continue;
    fs.rmSync(path.join(opts.runsDir, d.name), { recursive: true, force: true });
    opts.onRunGone?.(d.name);
  }
  for (const o of orphans) if (!liveRuns.has(o.runId)) opts.onRunGone?.(o.runId);
  return killed;
}
