// The sandbox backend contract: turn "run the runner for this group with these
// mounts" into a process to spawn. Backends build argv; they never spawn runs.

import type { Group } from '../core/types.js';

export type BackendName = 'bwrap' | 'docker' | 'apple' | 'none';

/** One bind mount, host path already resolved and policy-checked. */
export interface MountSpec {
  hostPath: string;
  /** Absolute path inside the sandbox. */
  sandboxPath: string;
  readonly: boolean;
}

export interface SandboxLimits {
  memoryMb: number;
  pids: number;
  fileSizeMb: number;
  /** RLIMIT_NOFILE inside the sandbox; the backend's default when absent. */
  openFiles?: number;
}

export interface SandboxRunSpec {
  runId: string;
  group: Group;
  /** The mount table of SPEC §8 plus allowed additional mounts (see mounts.ts). */
  mounts: MountSpec[];
  /** Host directory holding this run's model.sock / egress.sock; bound at /run/nanoclaw. */
  socketDir: string;
  /** Host path of the bundled runner (dist/runner.mjs). */
  runnerEntry: string;
  /** Host path of the node_modules the runner needs at run time (agent SDK + Claude Code). */
  runnerNodeModules: string;
  /** Non-secret environment for the runner; backends add nothing secret. */
  env: Record<string, string>;
  limits: SandboxLimits;
}

/** Paths as the runner sees them; the host puts them in the `start` line. */
export interface SandboxPaths {
  groupDir: string;
  globalDir: string;
  homeDir: string;
  socketDir: string;
}

export interface SpawnSpec {
  command: string;
  args: string[];
  /** The complete environment of the spawned process (never the host's). */
  env: Record<string, string>;
  cwd?: string;
  /** Run as this user/group (the host must be root to use them); used by tests and `none`. */
  uid?: number;
  gid?: number;
  paths: SandboxPaths;
}

export interface Availability {
  ok: boolean;
  /** One line for `nanoclaw doctor` and for refusal messages. */
  detail: string;
  /** The engine is not installed at all (as opposed to installed but failing). */
  missing?: boolean;
}

export interface SandboxBackend {
  readonly name: BackendName;
  available(): Promise<Availability>;
  buildSpawn(spec: SandboxRunSpec): SpawnSpec;
  /**
   * Called once the runner has spoken, while its sandbox is whole: a wait (true when
   * it held) for the sandbox's last process, for backends whose spawned process can
   * exit before everything it started inside has gone.
   */
  watchRunExit?(spawnedPid: number): (() => Promise<boolean>) | undefined;
  /** Frees per-run resources (e.g. cgroups) once the run's process has exited. */
  releaseRun?(runId: string): void;
  /** Kills sandboxes left by a previous host process; returns how many. */
  cleanupOrphans(): Promise<number>;
}
