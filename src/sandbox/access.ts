// Why a sandbox cannot start, in the owner's terms. A root host spawns bwrap as
// the sandbox user (uid 1000), so every directory on the way to a bind source
// must be searchable by that user; one 0700 directory (a mktemp dir, /root, a
// data dir created under umask 077) makes bwrap fail with a bare "Permission
// denied". The rules here are pure over stat results so they are unit-tested;
// `checkSandboxAccess` is the thin I/O shell that stats, and repairs the
// directories NanoClaw itself owns.

import fs from 'node:fs';
import path from 'node:path';

/** What the sandbox user does with a path: pass through a dir (or run a file), or read it (list a dir, read a file). */
export type AccessNeed = 'traverse' | 'read';

export interface PathStat {
  path: string;
  uid: number;
  gid: number;
  /** st_mode; only the permission bits are used. */
  mode: number;
  isDirectory: boolean;
}

export interface SandboxUser {
  uid: number;
  gid: number;
}

/** One path the sandbox needs, and why (said in the message). */
export interface AccessTarget {
  path: string;
  need: AccessNeed;
  /** e.g. "the data directory", "the install (runner bundle)". */
  what: string;
}

/** A directory (or file) that blocks the sandbox user. */
export interface AccessProblem {
  /** The first path on the way that the sandbox user cannot pass or read. */
  blocked: string;
  mode: number;
  ownerUid: number;
  target: AccessTarget;
  /** The exact shell command that lets the sandbox user through. */
  command: string;
}

export interface AccessRepair {
  path: string;
  fromMode: number;
  toMode: number;
}

/** Every path from `/` down to `target`, root first. */
export function pathChain(target: string): string[] {
  const chain: string[] = [];
  let current = path.resolve(target);
  for (;;) {
    chain.unshift(current);
    const parent = path.dirname(current);
    if (parent === current) return chain;
    current = parent;
  }
}

/** The permission bits that apply to `user` (owner, group or other), as rwx in the low 3 bits. */
function bitsFor(st: PathStat, user: SandboxUser): number {
  if (user.uid === 0) return 0o7;
  if (st.uid === user.uid) return (st.mode >> 6) & 0o7;
  if (st.gid === user.gid) return (st.mode >> 3) & 0o7;
  return st.mode & 0o7;
}

/** The bits `need` requires on this entry: x to pass a dir, r+x to list one; r to read a file, x to run it. */
function requiredBits(st: PathStat, need: AccessNeed): number {
  if (st.isDirectory) return need === 'read' ? 0o5 : 0o1;
  return need === 'read' ? 0o4 : 0o1;
}

export function allows(st: PathStat, user: SandboxUser, need: AccessNeed): boolean {
  const required = requiredBits(st, need);
  return (bitsFor(st, user) & required) === required;
}

/**
 * The first entry of `chain` (root first, ending at the target) the user cannot
 * get through: every ancestor must be traversable, the last entry needs `need`.
 */
export function firstBlocked(
  chain: readonly PathStat[],
  user: SandboxUser,
  need: AccessNeed,
): PathStat | null {
  for (let i = 0; i < chain.length; i++) {
    const st = chain[i];
    const last = i === chain.length - 1;
    if (!last && !st.isDirectory) return null; // a file mid-path: not an access problem
    if (!allows(st, user, last ? need : 'traverse')) return st;
  }
  return null;
}

/** The chmod that lets "others" (the sandbox user owns nothing of the host's) do what `need` needs. */
export function chmodCommand(st: PathStat, need: AccessNeed, last: boolean): string {
  const effective: AccessNeed = last ? need : 'traverse';
  const bits = st.isDirectory ? (effective === 'read' ? 'rx' : 'x') : effective === 'read' ? 'r' : 'x';
  return `chmod o+${bits} ${shellQuote(st.path)}`;
}

/** The mode a host-owned entry gets: search (0711-style) or read+search (0755-style) for group and others. */
export function repairedMode(st: PathStat, need: AccessNeed, last: boolean): number {
  const effective: AccessNeed = last ? need : 'traverse';
  const add = st.isDirectory ? (effective === 'read' ? 0o055 : 0o011) : effective === 'read' ? 0o044 : 0o011;
  return (st.mode & 0o7777) | add;
}

export function shellQuote(p: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** One sentence naming the blocked path, what needs it and the fix. */
export function describeProblem(problem: AccessProblem, user: SandboxUser): string {
  const isTarget = problem.blocked === path.resolve(problem.target.path);
  const where = isTarget
    ? `${problem.blocked} (${problem.target.what})`
    : `${problem.blocked} (on the way to ${problem.target.what}, ${problem.target.path})`;
  const verb = isTarget && problem.target.need === 'read' ? 'read' : 'enter';
  return (
    `the sandbox user (uid ${user.uid}) cannot ${verb} ${where}: ` +
    `it is mode ${formatMode(problem.mode)} owned by uid ${problem.ownerUid}. ` +
    `Fix: run \`${problem.command}\` (or move NANOCLAW_HOME / the install elsewhere)`
  );
}

export interface CheckAccessOptions {
  targets: readonly AccessTarget[];
  user: SandboxUser;
  /**
   * Directories NanoClaw created and owns (its home and what is under it): a
   * blocking directory inside one of these, owned by this process, is repaired
   * instead of reported. Secret files are never touched: only directories are.
   */
  ownedRoots: readonly string[];
  /** Only a root host spawns the sandbox as another user; otherwise nothing is checked. */
  hostUid: number;
  onRepair?: (repair: AccessRepair) => void;
}

export interface AccessCheck {
  repaired: AccessRepair[];
  problems: AccessProblem[];
}

function statOf(p: string): PathStat | null {
  try {
    const st = fs.statSync(p);
    return { path: p, uid: st.uid, gid: st.gid, mode: st.mode, isDirectory: st.isDirectory() };
  } catch {
    return null;
  }
}

function isInside(p: string, root: string): boolean {
  const r = path.resolve(root);
  return p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`);
}

/**
 * Walks each target's path as the sandbox user would, repairs what the host
 * owns, and returns the rest as problems (one per target, the first blocker).
 * Missing paths are skipped: whoever creates them later sets their mode.
 */
export function checkSandboxAccess(options: CheckAccessOptions): AccessCheck {
  const repaired: AccessRepair[] = [];
  const problems: AccessProblem[] = [];
  const { user } = options;
  if (options.hostUid === user.uid) return { repaired, problems };
  for (const target of options.targets) {
    const chain = pathChain(target.path);
    for (;;) {
      const stats: PathStat[] = [];
      for (const p of chain) {
        const st = statOf(p);
        if (!st) break;
        stats.push(st);
      }
      const complete = stats.length === chain.length;
      const blocked = firstBlocked(stats, user, complete ? target.need : 'traverse');
      if (!blocked) break;
      const last = complete && blocked === stats[stats.length - 1];
      const ours =
        blocked.isDirectory &&
        blocked.uid === options.hostUid &&
        options.ownedRoots.some((root) => isInside(blocked.path, root));
      if (ours) {
        const toMode = repairedMode(blocked, target.need, last);
        fs.chmodSync(blocked.path, toMode);
        const repair = { path: blocked.path, fromMode: blocked.mode & 0o7777, toMode };
        repaired.push(repair);
        options.onRepair?.(repair);
        continue; // walk again: a deeper directory may block too
      }
      problems.push({
        blocked: blocked.path,
        mode: blocked.mode & 0o7777,
        ownerUid: blocked.uid,
        target,
        command: chmodCommand(blocked, target.need, last),
      });
      break;
    }
  }
  return { repaired, problems: dedupe(problems) };
}

/** Several targets behind one blocked directory are one problem. */
function dedupe(problems: AccessProblem[]): AccessProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    if (seen.has(p.command)) return false;
    seen.add(p.command);
    return true;
  });
}

export class SandboxAccessError extends Error {
  constructor(
    readonly problems: AccessProblem[],
    user: SandboxUser,
  ) {
    super(problems.map((p) => describeProblem(p, user)).join('; '));
    this.name = 'SandboxAccessError';
  }
}
