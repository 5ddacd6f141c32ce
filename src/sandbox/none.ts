// The unsandboxed backend: the runner as a plain child process with host paths.
// It exists for hosts where no sandbox works, so it is refused for every group
// but main, needs the owner's explicit opt-in (select.ts), and the host prints
// sandboxWarning() at every start.

import fs from 'node:fs';
import path from 'node:path';

import { SANDBOX_PATHS, assertRunId, hostPathOf } from './mounts.js';
import type { Availability, SandboxBackend, SandboxRunSpec, SpawnSpec } from './types.js';

export interface NoneOptions {
  /** Host directory holding one HOME per group (`<homesDir>/<folder>/.claude` → the session dir). */
  homesDir: string;
  nodePath?: string;
}

export class NoneBackend implements SandboxBackend {
  readonly name = 'none' as const;

  constructor(private readonly opts: NoneOptions) {}

  async available(): Promise<Availability> {
    return { ok: true, detail: 'no sandbox: the agent runs as a plain process with host access (main only)' };
  }

  buildSpawn(spec: SandboxRunSpec): SpawnSpec {
    if (!spec.group.isMain) {
      throw new Error(
        `sandbox "none" runs only the main group; group "${spec.group.folder}" needs a sandbox`,
      );
    }
    assertRunId(spec.runId);
    const groupDir = hostPathOf(spec.mounts, SANDBOX_PATHS.group);
    const globalDir = hostPathOf(spec.mounts, SANDBOX_PATHS.global);
    const sessionDir = hostPathOf(spec.mounts, SANDBOX_PATHS.claudeDir);
    if (!groupDir || !globalDir || !sessionDir) {
      throw new Error('mount table lacks the group, global or session dir; build it with buildMountTable()');
    }
    // A per-group HOME whose .claude is the session dir keeps `$HOME/.claude` meaning the same everywhere.
    const homeDir = path.join(this.opts.homesDir, spec.group.folder);
    fs.mkdirSync(homeDir, { recursive: true, mode: 0o700 });
    const link = path.join(homeDir, '.claude');
    let current: string | null = null;
    try {
      current = fs.readlinkSync(link);
    } catch {
      // Missing: created below.
    }
    if (current !== sessionDir) {
      fs.rmSync(link, { force: true });
      fs.symlinkSync(sessionDir, link);
    }
    const env: Record<string, string> = { LANG: 'C.UTF-8', ...spec.env };
    env.PATH = '/usr/local/bin:/usr/bin:/bin';
    env.HOME = homeDir;
    env.NANOCLAW_RUN_ID = spec.runId;
    return {
      command: this.opts.nodePath ?? process.execPath,
      args: [path.resolve(spec.runnerEntry)],
      env,
      cwd: groupDir,
      paths: { groupDir, globalDir, homeDir, socketDir: path.resolve(spec.socketDir) },
    };
  }

  async cleanupOrphans(): Promise<number> {
    // No marker identifies a plain child; the host kills its own runs at shutdown.
    return 0;
  }
}
