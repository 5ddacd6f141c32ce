// The mount table of SPEC §8, built in one place so every backend exposes exactly
// the same view: a group sees its own folder, the shared global folder (read-only
// unless main), its own session state, and nothing else of the host.

import fs from 'node:fs';
import path from 'node:path';

import type { Group } from '../core/types.js';
import type { MountSpec, SandboxPaths } from './types.js';

/** Where things live inside every sandbox; the runner and the host agree on these. */
export const SANDBOX_PATHS = {
  group: '/workspace/group',
  global: '/workspace/global',
  /** Main only: the whole `groups/` parent, read-only. */
  groups: '/workspace/groups',
  extraRoot: '/workspace/extra',
  home: '/home/agent',
  claudeDir: '/home/agent/.claude',
  socketDir: '/run/nanoclaw',
  optDir: '/opt/nanoclaw',
  runnerEntry: '/opt/nanoclaw/runner.mjs',
  /** The claude-code engine, bundled apart so other engines never load it (scripts/bundle-runner.mjs). */
  runnerClaude: '/opt/nanoclaw/runner-claude.mjs',
  runnerNodeModules: '/opt/nanoclaw/node_modules',
} as const;

/** The claude-code engine's bundle, always beside the runner entry (runner.mjs imports it by relative path). */
export const RUNNER_CLAUDE_FILE = 'runner-claude.mjs';

/** The uid/gid the agent runs as inside every sandbox. */
/** What the runner is told about its paths in every isolating backend (the `start` line). */
export const SANDBOX_VIEW: Readonly<SandboxPaths> = Object.freeze({
  groupDir: SANDBOX_PATHS.group,
  globalDir: SANDBOX_PATHS.global,
  homeDir: SANDBOX_PATHS.home,
  socketDir: SANDBOX_PATHS.socketDir,
});

export const AGENT_UID = 1000;
export const AGENT_GID = 1000;

/** The folder of the shared memory; no group may own it. */
export const GLOBAL_FOLDER = 'global';

const FOLDER_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;

export interface MountTableInput {
  group: Group;
  /** Host `groups/` directory. */
  groupsDir: string;
  /** Host `data/sessions/` directory. */
  sessionsDir: string;
  /** Additional mounts that already passed the mount policy (mount-policy.ts). */
  extraMounts: MountSpec[];
  /** Owner given to directories created here; defaults to the agent uid/gid (only applied when root). */
  ownerUid?: number;
  ownerGid?: number;
}

/** Throws unless `folder` is a valid group folder that can never alias shared or foreign paths. */
export function assertGroupFolder(folder: string): void {
  if (!FOLDER_RE.test(folder)) {
    throw new Error(`group folder "${folder}" is invalid: use [a-z0-9][a-z0-9-]{0,63}, e.g. "family-chat"`);
  }
  if (folder === GLOBAL_FOLDER) {
    throw new Error(
      `group folder "${folder}" is reserved for shared memory; pick another, e.g. "family-chat"`,
    );
  }
}

/** Creates the directory if missing and hands it to the agent user so the agent can write it. */
function ensureAgentDir(dir: string, uid: number, gid: number): void {
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  // Only root can give files away; a non-root host spawns the sandbox as itself.
  if (process.getuid?.() === 0) {
    const st = fs.statSync(dir);
    if (st.uid !== uid || st.gid !== gid) fs.chownSync(dir, uid, gid);
  }
}

/** Returns the mounts of SPEC §8 for one group, parents before children. */
export function buildMountTable(input: MountTableInput): MountSpec[] {
  const { group, extraMounts } = input;
  assertGroupFolder(group.folder);
  const uid = input.ownerUid ?? AGENT_UID;
  const gid = input.ownerGid ?? AGENT_GID;
  const groupsDir = path.resolve(input.groupsDir);
  const groupDir = path.join(groupsDir, group.folder);
  const globalDir = path.join(groupsDir, GLOBAL_FOLDER);
  const sessionDir = path.join(path.resolve(input.sessionsDir), group.folder);

  // groups/ itself must stay traversable but not writable by the agent.
  if (!fs.existsSync(groupsDir)) fs.mkdirSync(groupsDir, { recursive: true, mode: 0o755 });
  ensureAgentDir(groupDir, uid, gid);
  ensureAgentDir(globalDir, uid, gid);
  ensureAgentDir(sessionDir, uid, gid);

  const mounts: MountSpec[] = [];
  if (group.isMain) {
    mounts.push({ hostPath: groupsDir, sandboxPath: SANDBOX_PATHS.groups, readonly: true });
  }
  mounts.push({ hostPath: groupDir, sandboxPath: SANDBOX_PATHS.group, readonly: false });
  mounts.push({ hostPath: globalDir, sandboxPath: SANDBOX_PATHS.global, readonly: !group.isMain });
  mounts.push({ hostPath: sessionDir, sandboxPath: SANDBOX_PATHS.claudeDir, readonly: false });

  for (const m of extraMounts) {
    if (!m.sandboxPath.startsWith(SANDBOX_PATHS.extraRoot + '/')) {
      throw new Error(`additional mount target "${m.sandboxPath}" must be under ${SANDBOX_PATHS.extraRoot}/`);
    }
    mounts.push(m);
  }
  return mounts;
}

/** Orders mounts so a parent is always mounted before anything inside it. */
export function sortMountsParentFirst(mounts: readonly MountSpec[]): MountSpec[] {
  const depth = (p: string): number => p.split('/').filter(Boolean).length;
  return [...mounts].sort((a, b) => depth(a.sandboxPath) - depth(b.sandboxPath));
}

/** Finds the host directory behind a sandbox path in a mount table (used by `none` and for `paths`). */
export function hostPathOf(mounts: readonly MountSpec[], sandboxPath: string): string | undefined {
  return mounts.find((m) => m.sandboxPath === sandboxPath)?.hostPath;
}

const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Run ids become path components, cgroup names and container names, so they are kept plain. */
export function assertRunId(runId: string): void {
  if (!RUN_ID_RE.test(runId) || runId.includes('..')) {
    throw new Error(
      `run id "${runId}" is invalid: use letters, digits, "_", "-", ".", e.g. "r-20250101-abc123"`,
    );
  }
}
