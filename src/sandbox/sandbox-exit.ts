// When a bwrap run has really ended. bwrap's outer process can exit before its
// sandbox is empty: killed by the host (a limit, a timeout), it takes the
// namespace's init with it (--die-with-parent), and only then does the kernel kill
// and reap every other process of the pid namespace. A fork bomb's few hundred
// processes take a moment to go on a loaded machine, and "the run is over" must mean
// nothing of it is left. The init's own exit completes only after the kernel has
// reaped the whole namespace, so the run is over once the init is gone or a zombie.
// Node has no pidfd: the wait polls /proc with a short backoff, only at a run's end.

import fs from 'node:fs';
import path from 'node:path';

export interface ProcStat {
  /** One letter: R, S, D, Z (zombie), X (dead), … */
  state: string;
  ppid: number;
  /** Clock ticks since boot; tells a reused pid from the process we saw. */
  startTicks: string;
}

/** A process as seen once; `isGone` compares against this. */
export interface ProcessStamp {
  pid: number;
  startTicks: string;
}

export function readProcStat(procDir: string, pid: number | string): ProcStat | null {
  let stat: string;
  try {
    stat = fs.readFileSync(path.join(procDir, String(pid), 'stat'), 'utf8');
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses; fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
  return { state: rest[0] ?? '', ppid: Number(rest[1]), startTicks: rest[19] ?? '' };
}

/**
 * The one live child of `parentPid` (bwrap's outer process has exactly one: the
 * namespace's init; the wrapper's finished `printf`s may linger as zombies). Null
 * when there is none or more than one.
 */
export function onlyChildOf(parentPid: number, procDir = '/proc'): ProcessStamp | null {
  let pids: string[];
  try {
    // CONFIG_PROC_CHILDREN: the cheap way; otherwise scan every process's parent.
    pids = fs
      .readFileSync(path.join(procDir, String(parentPid), 'task', String(parentPid), 'children'), 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
  } catch {
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(procDir).filter((e) => /^\d+$/.test(e));
    } catch {
      return null;
    }
    pids = entries.filter((pid) => readProcStat(procDir, pid)?.ppid === parentPid);
  }
  const live: ProcessStamp[] = [];
  for (const pid of pids) {
    const stat = readProcStat(procDir, pid);
    if (stat && stat.state !== 'Z' && stat.state !== 'X')
      live.push({ pid: Number(pid), startTicks: stat.startTicks });
  }
  return live.length === 1 ? live[0] : null;
}

/** True when the stamped process has exited (gone, a zombie, or its pid reused). */
export function isGone(stamp: ProcessStamp, procDir = '/proc'): boolean {
  const stat = readProcStat(procDir, stamp.pid);
  return stat === null || stat.startTicks !== stamp.startTicks || stat.state === 'Z' || stat.state === 'X';
}

export interface WaitGoneOptions {
  timeoutMs: number;
  procDir?: string;
  sleep?: (ms: number) => Promise<void>;
}

const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;

/** Resolves true once the process is gone, false if it is still there after `timeoutMs`. */
export async function waitUntilGone(stamp: ProcessStamp, opts: WaitGoneOptions): Promise<boolean> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let waitedMs = 0;
  let pollMs = FIRST_POLL_MS;
  while (!isGone(stamp, opts.procDir)) {
    if (waitedMs >= opts.timeoutMs) return false;
    await sleep(pollMs);
    waitedMs += pollMs;
    pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
  }
  return true;
}
