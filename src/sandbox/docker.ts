// Docker or Podman (the binary is a parameter): the container equivalent of the
// bwrap hardening — no network, read-only root, no capabilities, non-root user,
// pids/memory/file-size limits. Env values reach the container through the CLI's
// own environment (`-e NAME` without a value), so none of them appear in argv.

import fs from 'node:fs';
import path from 'node:path';

import { assertMountsUnchanged } from './mount-policy.js';
import { SANDBOX_PATHS, SANDBOX_VIEW, assertRunId } from './mounts.js';
import { dockerSeccompProfile } from './seccomp.js';
import { engineEnv, execCommand, type CommandRunner } from './exec.js';
import { runsDirOwnerId } from './orphans.js';
import type { Availability, SandboxBackend, SandboxRunSpec, SpawnSpec } from './types.js';

export const DEFAULT_IMAGE = 'nanoclaw-agent:latest';
export const RUN_LABEL = 'nanoclaw.run';
/** Which runs dir (data dir) a container belongs to; see runsDirOwnerId. */
export const OWNER_LABEL = 'nanoclaw.owner';
/** Host variables the docker/podman CLI needs to reach its engine; none of them are secrets. */
const ENGINE_VARS = ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_CONFIG', 'CONTAINER_HOST', 'XDG_RUNTIME_DIR'];
const RESERVED_ENV = new Set(['PATH', 'HOME']);

export interface DockerOptions {
  /** `docker` or `podman` (or a full path to either). */
  binary?: string;
  image?: string;
  exec?: CommandRunner;
  /** The host environment the engine variables are taken from. */
  hostEnv?: NodeJS.ProcessEnv;
  /**
   * Where the seccomp profile (seccomp.ts, the bwrap deny list) is written for
   * `--security-opt seccomp=FILE`; the CLI reads it, so a host path works.
   */
  seccompProfilePath: string;
  /** This host's runs dir: clean-up removes only containers started for it. */
  runsDir: string;
}

const DEFAULT_OPEN_FILES = 1024;
const DEV_SHM_BYTES = 64 * 1024 * 1024;

/** Refuses host paths that would change the meaning of a `-v a:b:ro` argument. */
function volumeArg(hostPath: string, sandboxPath: string, readonly: boolean): string {
  if (hostPath.includes(':') || sandboxPath.includes(':')) {
    throw new Error(`mount path "${hostPath}" contains ":", which docker cannot bind; rename the directory`);
  }
  return `${path.resolve(hostPath)}:${sandboxPath}${readonly ? ':ro' : ''}`;
}

export class DockerBackend implements SandboxBackend {
  readonly name = 'docker' as const;
  private readonly binary: string;
  private readonly image: string;
  private readonly exec: CommandRunner;
  private readonly cliEnv: Record<string, string>;

  private readonly seccompProfilePath: string;
  private readonly ownerId: string;

  constructor(opts: DockerOptions) {
    this.binary = opts.binary ?? 'docker';
    this.image = opts.image ?? DEFAULT_IMAGE;
    this.exec = opts.exec ?? execCommand;
    this.cliEnv = engineEnv(opts.hostEnv ?? process.env, ENGINE_VARS);
    this.seccompProfilePath = opts.seccompProfilePath;
    this.ownerId = runsDirOwnerId(opts.runsDir);
  }

  private writeSeccompProfile(): void {
    const profile = dockerSeccompProfile();
    let current: string | null = null;
    try {
      current = fs.readFileSync(this.seccompProfilePath, 'utf8');
    } catch {
      // Missing: written below.
    }
    if (current === profile) return;
    fs.mkdirSync(path.dirname(this.seccompProfilePath), { recursive: true, mode: 0o755 });
    fs.writeFileSync(this.seccompProfilePath, profile, { mode: 0o644 });
  }

  async available(): Promise<Availability> {
    const r = await this.exec(this.binary, ['info'], { timeoutMs: 5000, env: this.cliEnv });
    if (!r.ok) {
      const why = r.stderr.trim().split('\n')[0] || 'no answer';
      return {
        ok: false,
        ...(/ENOENT/.test(why) ? { missing: true } : {}),
        detail: `${this.binary} engine not reachable (${this.binary} info: ${why})`,
      };
    }
    const img = await this.exec(this.binary, ['image', 'inspect', this.image], {
      timeoutMs: 5000,
      env: this.cliEnv,
    });
    if (!img.ok) {
      return {
        ok: false,
        detail: `${this.binary} works but image ${this.image} is missing; build container/Dockerfile`,
      };
    }
    return { ok: true, detail: `${this.binary} engine reachable, image ${this.image}` };
  }

  buildSpawn(spec: SandboxRunSpec): SpawnSpec {
    assertRunId(spec.runId);
    assertMountsUnchanged(spec.mounts);
    this.writeSeccompProfile();
    const { limits } = spec;
    const args = [
      'run',
      '--rm',
      '-i',
      '--name',
      `nanoclaw-${spec.runId}`,
      '--label',
      `${RUN_LABEL}=${spec.runId}`,
      '--label',
      `${OWNER_LABEL}=${this.ownerId}`,
      '--network',
      'none',
      '--read-only',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--security-opt',
      `seccomp=${this.seccompProfilePath}`,
      '--user',
      '1000:1000',
      '--pids-limit',
      String(limits.pids),
      '--memory',
      `${limits.memoryMb}m`,
      '--memory-swap',
      `${limits.memoryMb}m`,
      '--ulimit',
      `fsize=${limits.fileSizeMb * 1024 * 1024}`,
      '--ulimit',
      'core=0',
      '--ulimit',
      `nofile=${limits.openFiles ?? DEFAULT_OPEN_FILES}`,
      '--shm-size',
      String(DEV_SHM_BYTES),
      '--tmpfs',
      `/tmp:size=${Math.max(limits.fileSizeMb, 64)}m`,
      '--tmpfs',
      `${SANDBOX_PATHS.home}:uid=1000,gid=1000,mode=0700,size=256m`,
      '--workdir',
      SANDBOX_PATHS.group,
      '-v',
      volumeArg(spec.socketDir, SANDBOX_PATHS.socketDir, false),
    ];
    for (const m of spec.mounts) args.push('-v', volumeArg(m.hostPath, m.sandboxPath, m.readonly));
    const env: Record<string, string> = { ...this.cliEnv };
    args.push('-e', `HOME=${SANDBOX_PATHS.home}`, '-e', `NANOCLAW_RUN_ID=${spec.runId}`);
    for (const [k, v] of Object.entries({ LANG: 'C.UTF-8', ...spec.env })) {
      if (RESERVED_ENV.has(k) || k === 'NANOCLAW_RUN_ID') continue;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`environment name "${k}" is invalid`);
      // Without a value, -e copies the variable from the CLI's environment: values stay out of argv.
      args.push('-e', k);
      env[k] = v;
    }
    args.push(this.image, 'node', SANDBOX_PATHS.runnerEntry);
    return {
      command: this.binary,
      args,
      env,
      paths: { ...SANDBOX_VIEW },
    };
  }

  async cleanupOrphans(): Promise<number> {
    const opts = { timeoutMs: 10_000, env: this.cliEnv };
    const filters = ['--filter', `label=${RUN_LABEL}`, '--filter', `label=${OWNER_LABEL}=${this.ownerId}`];
    const list = await this.exec(this.binary, ['ps', '-aq', ...filters], opts);
    if (!list.ok) return 0;
    const ids = list.stdout.split(/\s+/).filter(Boolean);
    if (ids.length === 0) return 0;
    const rm = await this.exec(this.binary, ['rm', '-f', ...ids], opts);
    return rm.ok ? ids.length : 0;
  }
}
