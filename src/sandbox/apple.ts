// Apple Container on macOS: each run is a lightweight Linux VM. The VM boundary
// isolates files and processes well, but the host cannot cut its network to
// "only through our proxy", so egress is unenforced; the backend therefore
// reports itself unavailable unless the owner set allowUnenforcedEgress. The CLI
// has no pids or file-size limits; memory is the VM's size.

import path from 'node:path';

import { DEFAULT_IMAGE, RUN_LABEL } from './docker.js';
import { engineEnv, execCommand, type CommandRunner } from './exec.js';
import { SANDBOX_PATHS, SANDBOX_VIEW, assertRunId } from './mounts.js';
import { runsDirOwnerId } from './orphans.js';
import type { Availability, SandboxBackend, SandboxRunSpec, SpawnSpec } from './types.js';

export interface AppleOptions {
  allowUnenforcedEgress: boolean;
  binary?: string;
  image?: string;
  exec?: CommandRunner;
  hostEnv?: NodeJS.ProcessEnv;
  /** This host's runs dir: its id is in every container name, so clean-up removes only ours. */
  runsDir: string;
}

function mountArg(hostPath: string, sandboxPath: string, readonly: boolean): string {
  if (/[,=]/.test(hostPath) || /[,=]/.test(sandboxPath)) {
    throw new Error(`mount path "${hostPath}" contains "," or "=", which --mount cannot express; rename it`);
  }
  return `type=bind,source=${path.resolve(hostPath)},target=${sandboxPath}${readonly ? ',readonly' : ''}`;
}

export class AppleBackend implements SandboxBackend {
  readonly name = 'apple' as const;
  private readonly binary: string;
  private readonly image: string;
  private readonly exec: CommandRunner;
  private readonly cliEnv: Record<string, string>;
  private readonly namePrefix: string;

  constructor(private readonly opts: AppleOptions) {
    this.binary = opts.binary ?? 'container';
    this.image = opts.image ?? DEFAULT_IMAGE;
    this.exec = opts.exec ?? execCommand;
    this.cliEnv = engineEnv(opts.hostEnv ?? process.env, []);
    this.namePrefix = `nanoclaw-${runsDirOwnerId(opts.runsDir)}-`;
  }

  async available(): Promise<Availability> {
    if (!this.opts.allowUnenforcedEgress) {
      return {
        ok: false,
        detail:
          'apple container cannot enforce the egress allowlist; set allowUnenforcedEgress: true to accept that',
      };
    }
    const r = await this.exec(this.binary, ['system', 'status'], { timeoutMs: 5000, env: this.cliEnv });
    if (!r.ok) {
      const why = r.stderr.trim().split('\n')[0] || 'no answer';
      return { ok: false, detail: `apple container not running (${this.binary} system status: ${why})` };
    }
    return { ok: true, detail: `apple container running, image ${this.image} (egress NOT enforced)` };
  }

  buildSpawn(spec: SandboxRunSpec): SpawnSpec {
    assertRunId(spec.runId);
    const args = [
      'run',
      '--rm',
      '-i',
      '--name',
      `${this.namePrefix}${spec.runId}`,
      '--label',
      `${RUN_LABEL}=${spec.runId}`,
      '--no-dns',
      '--user',
      '1000:1000',
      '--memory',
      `${spec.limits.memoryMb}M`,
      '--tmpfs',
      '/tmp',
      '--tmpfs',
      SANDBOX_PATHS.home,
      '--workdir',
      SANDBOX_PATHS.group,
    ];
    for (const m of spec.mounts) args.push('--mount', mountArg(m.hostPath, m.sandboxPath, m.readonly));
    const env: Record<string, string> = {
      LANG: 'C.UTF-8',
      ...spec.env,
      HOME: SANDBOX_PATHS.home,
      NANOCLAW_RUN_ID: spec.runId,
    };
    // This CLI only takes key=value; the values are per-run and non-secret by contract.
    for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
    args.push(this.image, 'node', SANDBOX_PATHS.runnerEntry);
    return {
      command: this.binary,
      args,
      env: { ...this.cliEnv },
      paths: { ...SANDBOX_VIEW },
    };
  }

  async cleanupOrphans(): Promise<number> {
    const opts = { timeoutMs: 10_000, env: this.cliEnv };
    const list = await this.exec(this.binary, ['list', '--all', '--quiet'], opts);
    if (!list.ok) return 0;
    const ids = list.stdout.split(/\s+/).filter((id) => id.startsWith(this.namePrefix));
    if (ids.length === 0) return 0;
    const rm = await this.exec(this.binary, ['delete', '--force', ...ids], opts);
    return rm.ok ? ids.length : 0;
  }
}
