// Per-run cgroups for the bwrap backend: the only way to put a real ceiling on a
// run's total memory (rlimits are per process) and a second, uid-independent
// ceiling on its process count. Supported where the host can create child groups
// in cgroup v1 `memory` and `pids` hierarchies (the spawned wrapper joins them as
// the agent uid, which v1 allows once the group's `cgroup.procs` is chowned to it).
// cgroup v2 would need the joining process to own a common ancestor, which a
// plain root service does not have without systemd delegation, so on v2 hosts
// detection returns null and the backend falls back to rlimits (bwrap.ts).

import fs from 'node:fs';
import path from 'node:path';

import type { SandboxLimits } from './types.js';

export interface CgroupLayout {
  version: 1;
  /** Parent directories under which one child per run is created. */
  memoryBase: string;
  pidsBase: string;
}

export interface CgroupProbe {
  /** Contents of /proc/self/mountinfo. */
  mountinfo: string;
  /** Contents of /proc/self/cgroup. */
  selfCgroup: string;
}

function readProbe(): CgroupProbe | null {
  try {
    return {
      mountinfo: fs.readFileSync('/proc/self/mountinfo', 'utf8'),
      selfCgroup: fs.readFileSync('/proc/self/cgroup', 'utf8'),
    };
  } catch {
    return null;
  }
}

/** Finds the v1 mount point of a controller and this process's path in it. */
function v1Dir(probe: CgroupProbe, controller: string): string | null {
  let mountPoint: string | null = null;
  for (const line of probe.mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup' || !superOpts) continue;
    if (superOpts.split(',').includes(controller)) {
      mountPoint = pre.split(' ')[4] ?? null;
      break;
    }
  }
  if (!mountPoint) return null;
  for (const line of probe.selfCgroup.split('\n')) {
    const [, controllers, cgPath] = line.split(':');
    if (controllers !== undefined && cgPath !== undefined && controllers.split(',').includes(controller)) {
      return path.join(mountPoint, cgPath);
    }
  }
  return mountPoint;
}

/** Returns a usable layout, or null when per-run cgroups cannot be created here. */
export function detectCgroupLayout(probe: CgroupProbe | null = readProbe()): CgroupLayout | null {
  if (!probe) return null;
  const mem = v1Dir(probe, 'memory');
  const pids = v1Dir(probe, 'pids');
  if (!mem || !pids) return null;
  const memoryBase = path.join(mem, 'nanoclaw');
  const pidsBase = path.join(pids, 'nanoclaw');
  try {
    fs.mkdirSync(memoryBase, { recursive: true });
    fs.mkdirSync(pidsBase, { recursive: true });
    // The sandbox user passes through to its run's cgroup.procs; a umask of 077 would block it.
    for (const dir of [memoryBase, pidsBase]) fs.chmodSync(dir, 0o755);
    if (!fs.existsSync(path.join(memoryBase, 'memory.limit_in_bytes'))) return null;
    if (!fs.existsSync(path.join(pidsBase, 'pids.max'))) return null;
  } catch {
    return null;
  }
  return { version: 1, memoryBase, pidsBase };
}

/**
 * Creates the run's groups with its limits and returns the `cgroup.procs` files
 * the spawned wrapper writes its own pid to before exec'ing bwrap.
 */
export function createRunCgroup(
  layout: CgroupLayout,
  runId: string,
  limits: SandboxLimits,
  owner: { uid: number; gid: number } | null,
): string[] {
  const memDir = path.join(layout.memoryBase, runId);
  const pidsDir = path.join(layout.pidsBase, runId);
  fs.mkdirSync(memDir, { recursive: true });
  fs.mkdirSync(pidsDir, { recursive: true });
  for (const dir of [memDir, pidsDir]) fs.chmodSync(dir, 0o755);
  const memBytes = String(limits.memoryMb * 1024 * 1024);
  fs.writeFileSync(path.join(memDir, 'memory.limit_in_bytes'), memBytes);
  // Without this a host with swap lets the run page out instead of being killed.
  const memsw = path.join(memDir, 'memory.memsw.limit_in_bytes');
  if (fs.existsSync(memsw)) fs.writeFileSync(memsw, memBytes);
  fs.writeFileSync(path.join(pidsDir, 'pids.max'), String(limits.pids));
  const procs = [path.join(memDir, 'cgroup.procs'), path.join(pidsDir, 'cgroup.procs')];
  if (owner) for (const p of procs) fs.chownSync(p, owner.uid, owner.gid);
  return procs;
}

/** Removes a run's groups; harmless when they are gone or still busy. */
export function removeRunCgroup(layout: CgroupLayout, runId: string): void {
  for (const base of [layout.memoryBase, layout.pidsBase]) {
    try {
      fs.rmdirSync(path.join(base, runId));
    } catch {
      // EBUSY while processes remain; ENOENT when already gone.
    }
  }
}

/** Removes empty run groups older than `minAgeMs` (their runs have ended); returns how many. */
export function sweepRunCgroups(layout: CgroupLayout, minAgeMs: number, nowMs = Date.now()): number {
  let removed = 0;
  for (const base of [layout.memoryBase, layout.pidsBase]) {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(base, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const dir = path.join(base, e.name);
      try {
        if (nowMs - fs.statSync(dir).mtimeMs < minAgeMs) continue;
        fs.rmdirSync(dir);
        removed++;
      } catch {
        // Still has processes: a live run.
      }
    }
  }
  return removed;
}

/** Whether a group still has processes in it (used to tell live runs from leftovers). */
export function runCgroupPids(layout: CgroupLayout, runId: string): number[] {
  try {
    return fs
      .readFileSync(path.join(layout.pidsBase, runId, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}
