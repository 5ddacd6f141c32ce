// The default Linux backend: bubblewrap with an allow-only file system view, all
// namespaces unshared (no network at all: the runner reaches the host only through
// the unix sockets bound at /run/nanoclaw), uid 1000 and no capabilities.
//
// Limits, and why this mechanism:
// - bwrap is spawned as host uid 1000 (SpawnSpec.uid) when the host is root, so the
//   sandbox's uid maps to a real unprivileged host user. Mapped to host root, the
//   kernel exempts it from RLIMIT_NPROC entirely.
// - Inside the sandbox `prlimit` sets RLIMIT_NPROC (pids), RLIMIT_FSIZE (file size)
//   and RLIMIT_CORE=0 before exec'ing node. NPROC is set inside the new user
//   namespace so it counts only this run's processes (kernel ucounts are per
//   namespace), not every process of host uid 1000.
// - Memory: where per-run cgroups work (cgroup.ts, v1 memory+pids) the wrapper
//   joins them before exec'ing bwrap: memory.limit_in_bytes is a real ceiling on
//   the whole run and pids.max a second process ceiling. Without cgroups the
//   fallback is RLIMIT_DATA per process, a weaker bound (pids × memory), and
//   available() says so.
// - tmpfs /tmp, HOME and /dev/shm get a size cap so RAM-backed writes are bounded
//   too, and RLIMIT_NOFILE is far below the host's so no run can exhaust host fds.
//
// Spawn path (see WRAPPER_SCRIPT): bash opens and checks the additional mount
// sources (bwrap binds them by fd, so a symlink swapped in after the mount policy
// ran cannot redirect a bind), closes every other inherited fd above 2, joins the
// run's cgroups, and execs bwrap with its options on a pipe (`--args 3`) and the
// seccomp filter on another (`--seccomp 4`, seccomp.ts). Why bash: Node/libuv
// never closes fds the host inherited without FD_CLOEXEC (a launcher's
// `exec 50<dir`, a supervisor's pipe), bwrap passes them on to the sandbox, and
// Node cannot mark them close-on-exec; dash (/bin/sh) cannot name fds above 9,
// bash can. Why --args: bwrap's argv is the sandbox's /proc/1/cmdline; host paths
// (data dir, runs dir, project) must not be readable there.

import { execFile, type ExecFileOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import {
  SandboxAccessError,
  checkSandboxAccess,
  type AccessRepair,
  type AccessTarget,
  type SandboxUser,
} from './access.js';
import {
  createRunCgroup,
  detectCgroupLayout,
  removeRunCgroup,
  sweepRunCgroups,
  type CgroupLayout,
} from './cgroup.js';
import {
  AGENT_GID,
  AGENT_UID,
  RUNNER_CLAUDE_FILE,
  SANDBOX_PATHS,
  SANDBOX_VIEW,
  assertRunId,
  hostPathOf,
  sortMountsParentFirst,
} from './mounts.js';
import { assertMountsUnchanged } from './mount-policy.js';
import { cleanupBwrapOrphans } from './orphans.js';
import { onlyChildOf, waitUntilGone } from './sandbox-exit.js';
import { compileSeccomp, seccompArchOf, type SeccompArch } from './seccomp.js';
import { bwrapMissing, diagnoseBwrapFailure, readUsernsSysctls } from './start-failure.js';
import type { Availability, SandboxBackend, SandboxPaths, SandboxRunSpec, SpawnSpec } from './types.js';

export interface BwrapOptions {
  /** Host `data/runs/`: every run's socket dir is a direct child (orphan detection relies on it). */
  runsDir: string;
  /** Host directory for the synthetic /etc files (passwd, group, hosts, nsswitch.conf). */
  etcDir: string;
  bwrapPath?: string;
  /** Must live under /usr so it is visible inside the sandbox. */
  prlimitPath?: string;
  /** Runs the spawn wrapper; bash because dash cannot close fds above 9. */
  bashPath?: string;
  /** Node binary; bound read-only at /opt/nanoclaw/bin/node unless it already lives under /usr. */
  nodePath?: string;
  /** Host uid/gid to spawn bwrap as; defaults to 1000 when the host is root, else unchanged. */
  spawnUid?: number;
  spawnGid?: number;
  /** `auto` uses per-run cgroups when the host allows them; `off` uses rlimits only. */
  cgroups?: 'auto' | 'off';
  /** Injected for tests; defaults to detection on this host. */
  cgroupLayout?: CgroupLayout | null;
  /** Node's `process.arch` the seccomp table is chosen for; defaults to this host's. */
  arch?: string;
  /**
   * Paths every run needs besides the backend's own (data dir, groups, the
   * install): checked at the probe so a blocked one is named before any run.
   */
  accessTargets?: AccessTarget[];
  /** Directories NanoClaw created (its data dirs): a blocking one is repaired, not reported. */
  ownedRoots?: string[];
  /** Told about each directory whose mode was repaired, for the log. */
  onRepair?: (repair: AccessRepair) => void;
}

const SYSTEM_DIRS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const ETC_BINDS = ['/etc/ssl', '/etc/ca-certificates', '/etc/localtime'];
const OPT_BIN = '/opt/nanoclaw/bin';
const INNER_PATH = `${OPT_BIN}:/usr/local/bin:/usr/bin:/bin`;
const TMPFS_HOME_BYTES = 256 * 1024 * 1024;
const TMPFS_DEV_SHM_BYTES = 64 * 1024 * 1024;
/** RLIMIT_NOFILE inside the sandbox when the spec does not say. */
export const DEFAULT_SANDBOX_OPEN_FILES = 1024;
/** A run cgroup younger than this may belong to a spawn that is being set up right now. */
const CGROUP_SWEEP_MIN_AGE_MS = 60_000;
/** The kernel empties even a full pid namespace in well under this on a loaded board. */
const SANDBOX_EXIT_WAIT_MS = 30_000;

const ETC_FILES: Record<string, string> = {
  passwd: `agent:x:${AGENT_UID}:${AGENT_GID}:agent:${SANDBOX_PATHS.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
  group: `agent:x:${AGENT_GID}:\nnogroup:x:65534:\n`,
  hosts: '127.0.0.1 localhost\n::1 localhost\n',
  'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
};

/**
 * argv: bwrap, its options (printf %b escapes), the seccomp filter (same), the run
 * id, the additional mounts' host paths, `--`, cgroup.procs files, `--`, the
 * command. Pipes the options to fd 3 and the filter to fd 4; opens each mount
 * source on fd 5, 6, … and checks the opened object is still the checked path
 * (bwrap binds the fd, so a later symlink swap cannot redirect it; exit 126);
 * closes every other fd above 2 (inherited ones would reach the sandbox); joins
 * the cgroups (exit 125 if that fails) and becomes bwrap.
 */
const WRAPPER_SCRIPT = [
  'bwrap=$1 data=$2 filter=$3 run=$4; shift 4',
  'exec 3< <(printf %b "$data") 4< <(printf %b "$filter")',
  "keep=' 0 1 2 3 4 '; fd=5",
  'while [ "$1" != -- ]; do',
  String.raw`  { [ -d "$1" ] || [ -f "$1" ]; } && eval "exec $fd<\"\$1\"" && [ "$(readlink "/proc/$$/fd/$fd")" = "$1" ] ||`,
  '    { echo "nanoclaw: mount source $1 changed after the mount policy checked it" >&2; exit 126; }',
  '  keep="$keep$fd "; fd=$((fd + 1)); shift',
  'done; shift',
  'for f in /proc/$$/fd/*; do n=${f##*/}; case $keep in *" $n "*) ;; *) eval "exec $n>&-" ;; esac; done',
  'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; done',
  'while [ "$1" != -- ]; do shift; done; shift',
  // bwrap's environ is readable at /proc/1/environ: exactly PATH and PWD (bash's exec
  // would add SHLVL).
  'exec /usr/bin/env -i PATH=/usr/bin:/bin PWD=/ "$bwrap" --args 3 --setenv NANOCLAW_RUN_ID "$run" -- "$@"',
].join('\n');
/** The wrapper opens additional mount sources from this fd on. */
const FIRST_BIND_FD = 5;

/** Bytes as a `printf %b` argument: plain characters stay, everything else is `\xHH`. */
function printfEscape(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const plain =
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      '/._:=,+@-'.includes(String.fromCharCode(b));
    out += plain ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** NUL-separated bwrap options, as `--args FD` reads them. */
function argsData(args: readonly string[]): Buffer {
  for (const a of args) if (a.includes('\0')) throw new Error('a sandbox argument contains a NUL byte');
  return Buffer.from(args.map((a) => `${a}\0`).join(''), 'utf8');
}

function run(
  cmd: string,
  args: string[],
  opts: ExecFileOptions,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...opts, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ ok: !err, stdout: String(stdout), stderr: String(stderr || (err ? err.message : '')) });
    });
  });
}

export class BwrapBackend implements SandboxBackend {
  readonly name = 'bwrap' as const;
  private readonly bwrapPath: string;
  private readonly prlimitPath: string;
  private readonly bashPath: string;
  private readonly seccompArch: SeccompArch | null;
  private readonly nodePath: string;
  private readonly spawnUid: number | undefined;
  private readonly spawnGid: number | undefined;
  private readonly cgroupLayout: CgroupLayout | null;

  constructor(private readonly opts: BwrapOptions) {
    this.bwrapPath = opts.bwrapPath ?? '/usr/bin/bwrap';
    this.prlimitPath = opts.prlimitPath ?? '/usr/bin/prlimit';
    this.bashPath = opts.bashPath ?? '/bin/bash';
    this.seccompArch = seccompArchOf(opts.arch ?? process.arch);
    this.nodePath = fs.realpathSync(opts.nodePath ?? process.execPath);
    const root = process.getuid?.() === 0;
    this.spawnUid = opts.spawnUid ?? (root ? AGENT_UID : undefined);
    this.spawnGid = opts.spawnGid ?? (root ? AGENT_GID : undefined);
    this.cgroupLayout =
      opts.cgroups === 'off'
        ? null
        : opts.cgroupLayout !== undefined
          ? opts.cgroupLayout
          : detectCgroupLayout();
  }

  /** How memory and process limits are enforced on this host, for doctor. */
  limitMechanism(): string {
    return this.cgroupLayout
      ? 'limits: cgroup v1 memory+pids per run, rlimit nproc/fsize'
      : 'limits: rlimit nproc/fsize/data per process (no writable cgroup; memory is per process)';
  }

  async available(): Promise<Availability> {
    if (!fs.existsSync(this.bwrapPath)) {
      return { ok: false, missing: true, detail: bwrapMissing(this.bwrapPath).message };
    }
    const version = await run(this.bwrapPath, ['--version'], {
      timeout: 3000,
      env: { PATH: '/usr/bin:/bin' },
    });
    if (!version.ok)
      return { ok: false, detail: `bwrap not usable at ${this.bwrapPath}: ${version.stderr.trim()}` };
    if (!this.prlimitPath.startsWith('/usr/') || !fs.existsSync(this.prlimitPath)) {
      return { ok: false, detail: `prlimit not found at ${this.prlimitPath} (install util-linux)` };
    }
    if (!fs.existsSync(this.bashPath)) {
      return { ok: false, detail: `bash not found at ${this.bashPath} (the sandbox spawn wrapper needs it)` };
    }
    if (!this.seccompArch) {
      return {
        ok: false,
        detail: `no seccomp syscall table for ${process.arch} (x64 and arm64 are supported)`,
      };
    }
    this.writeEtcFiles();
    const access = this.checkAccess([
      ...Object.keys(ETC_FILES).map((name): AccessTarget => ({
        path: path.join(this.opts.etcDir, name),
        need: 'read',
        what: "the sandbox's /etc files",
      })),
      { path: this.opts.runsDir, need: 'traverse', what: 'the runs directory' },
      { path: this.nodePath, need: 'traverse', what: 'the node binary' },
      ...(this.opts.accessTargets ?? []),
    ]);
    if (access) return { ok: false, detail: access.message };
    // The probe goes through the same wrapper, fd plumbing and seccomp filter as a run.
    const probe = this.wrap([...this.coreArgs(), ...this.systemArgs()], 'probe', [], [], ['/bin/true']);
    const started = await run(probe.command, probe.args, {
      timeout: 5000,
      env: { PATH: '/usr/bin:/bin' },
      uid: this.spawnUid,
      gid: this.spawnGid,
      cwd: '/',
    });
    if (!started.ok) {
      const failure = diagnoseBwrapFailure({ stderr: started.stderr, sysctls: readUsernsSysctls() });
      // bwrap names the path it could not open; the blocking directory is somewhere above it.
      const blocked = failure.path
        ? this.checkAccess([{ path: failure.path, need: 'read', what: 'a sandbox bind source' }])
        : null;
      return { ok: false, detail: blocked?.message ?? failure.message };
    }
    return { ok: true, detail: `${version.stdout.trim()}; ${this.limitMechanism()}` };
  }

  buildSpawn(spec: SandboxRunSpec): SpawnSpec {
    assertRunId(spec.runId);
    const socketDir = path.resolve(spec.socketDir);
    if (path.dirname(socketDir) !== path.resolve(this.opts.runsDir)) {
      throw new Error(`socket dir ${socketDir} must be a direct child of the runs dir ${this.opts.runsDir}`);
    }
    if (!hostPathOf(spec.mounts, SANDBOX_PATHS.group)) {
      throw new Error(`mount table has no ${SANDBOX_PATHS.group}; build it with buildMountTable()`);
    }
    // The mount policy ran a moment ago; a path swapped for a symlink since then is refused here.
    assertMountsUnchanged(spec.mounts);
    this.writeEtcFiles();
    // Absent only where a test runs a probe script as the runner; a built install always has it.
    const claudeEngine = path.join(path.dirname(path.resolve(spec.runnerEntry)), RUNNER_CLAUDE_FILE);
    const hasClaudeEngine = fs.existsSync(claudeEngine);
    const blocked = this.checkAccess([
      { path: spec.runnerEntry, need: 'read', what: 'the runner bundle' },
      ...(hasClaudeEngine
        ? [{ path: claudeEngine, need: 'read', what: "the runner's claude-code engine" } as const]
        : []),
      { path: spec.runnerNodeModules, need: 'read', what: "the runner's node_modules" },
      { path: socketDir, need: 'traverse', what: "the run's socket directory" },
      { path: this.nodePath, need: 'traverse', what: 'the node binary' },
      { path: this.opts.etcDir, need: 'read', what: "the sandbox's /etc files" },
      ...spec.mounts.map((m): AccessTarget =>
        // An additional mount's own mode is the owner's business (bwrap binds it either
        // way); only the way to it must be open, as for any bind source.
        m.sandboxPath.startsWith(SANDBOX_PATHS.extraRoot + '/')
          ? { path: path.dirname(m.hostPath), need: 'traverse', what: `the parent of ${m.hostPath}` }
          : {
              path: m.hostPath,
              need: m.readonly ? 'read' : 'traverse',
              what: `the folder mounted at ${m.sandboxPath}`,
            },
      ),
    ]);
    if (blocked) throw blocked;

    const args = [...this.coreArgs(), ...this.systemArgs()];
    const tmpBytes = String(Math.max(spec.limits.fileSizeMb, 64) * 1024 * 1024);
    args.push('--size', tmpBytes, '--tmpfs', '/tmp');
    args.push('--perms', '0700', '--size', String(TMPFS_HOME_BYTES), '--tmpfs', SANDBOX_PATHS.home);

    let nodeInside = this.nodePath;
    if (!this.nodePath.startsWith('/usr/')) {
      nodeInside = `${OPT_BIN}/node`;
      args.push('--ro-bind', this.nodePath, nodeInside);
    }
    args.push('--ro-bind', path.resolve(spec.runnerEntry), SANDBOX_PATHS.runnerEntry);
    if (hasClaudeEngine) args.push('--ro-bind', claudeEngine, SANDBOX_PATHS.runnerClaude);
    args.push('--ro-bind', path.resolve(spec.runnerNodeModules), SANDBOX_PATHS.runnerNodeModules);
    // Connecting to a unix socket is allowed on a read-only mount; nothing else is needed there.
    args.push('--ro-bind', socketDir, SANDBOX_PATHS.socketDir);
    // Additional mounts (owner-chosen paths the agent may influence) are bound by fd; the
    // rest are the host's own data dirs.
    const bindSources: string[] = [];
    for (const m of sortMountsParentFirst(spec.mounts)) {
      if (m.sandboxPath.startsWith(SANDBOX_PATHS.extraRoot + '/')) {
        const fd = String(FIRST_BIND_FD + bindSources.length);
        bindSources.push(path.resolve(m.hostPath));
        args.push(m.readonly ? '--ro-bind-fd' : '--bind-fd', fd, m.sandboxPath);
      } else {
        args.push(m.readonly ? '--ro-bind' : '--bind', m.hostPath, m.sandboxPath);
      }
    }
    // Nothing may be created in the sandbox root after the mounts are in place.
    args.push('--remount-ro', '/');
    args.push('--chdir', SANDBOX_PATHS.group, '--clearenv');
    const env: Record<string, string> = { LANG: 'C.UTF-8', ...spec.env };
    env.PATH = INNER_PATH;
    env.HOME = SANDBOX_PATHS.home;
    delete env.NANOCLAW_RUN_ID; // set from the visible argv, where orphan detection finds it
    for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);

    const rlimits = [
      `--nproc=${spec.limits.pids}`,
      `--fsize=${spec.limits.fileSizeMb * 1024 * 1024}`,
      `--nofile=${spec.limits.openFiles ?? DEFAULT_SANDBOX_OPEN_FILES}`,
      '--core=0',
    ];
    if (!this.cgroupLayout) rlimits.push(`--data=${spec.limits.memoryMb * 1024 * 1024}`);
    const command = [this.prlimitPath, ...rlimits, '--', nodeInside, SANDBOX_PATHS.runnerEntry];

    const paths: SandboxPaths = { ...SANDBOX_VIEW };
    let procs: string[] = [];
    if (this.cgroupLayout) {
      sweepRunCgroups(this.cgroupLayout, CGROUP_SWEEP_MIN_AGE_MS);
      const owner =
        this.spawnUid !== undefined ? { uid: this.spawnUid, gid: this.spawnGid ?? AGENT_GID } : null;
      procs = createRunCgroup(this.cgroupLayout, spec.runId, spec.limits, owner);
    }
    return { ...this.wrap(args, spec.runId, bindSources, procs, command), paths };
  }

  /**
   * The spawn of WRAPPER_SCRIPT: bwrap's options and the seccomp filter travel as
   * escaped text in bash's argv (host-side only) and reach bwrap on pipes.
   */
  private wrap(
    bwrapArgs: string[],
    runId: string,
    bindSources: string[],
    cgroupProcs: string[],
    command: string[],
  ): Omit<SpawnSpec, 'paths'> {
    if (!this.seccompArch) throw new Error(`no seccomp syscall table for ${process.arch}`);
    const data = argsData([...bwrapArgs, '--seccomp', '4']);
    const filter = compileSeccomp(this.seccompArch);
    return {
      command: this.bashPath,
      args: [
        '-c',
        WRAPPER_SCRIPT,
        'nanoclaw-sandbox',
        this.bwrapPath,
        printfEscape(data),
        printfEscape(filter),
        runId,
        ...bindSources,
        '--',
        ...cgroupProcs,
        '--',
        ...command,
      ],
      // bwrap's own environ is readable at /proc/1/environ inside: keep it to PATH.
      env: { PATH: '/usr/bin:/bin' },
      cwd: '/',
      uid: this.spawnUid,
      gid: this.spawnGid,
    };
  }

  /**
   * bwrap runs as the sandbox user, so every bind source must be reachable by it:
   * repairs what NanoClaw owns, and returns the rest as one error naming the
   * directory and the chmod (bwrap alone would say "Can't find source path").
   */
  private checkAccess(targets: AccessTarget[]): SandboxAccessError | null {
    const hostUid = process.getuid?.();
    if (this.spawnUid === undefined || hostUid === undefined || this.spawnUid === hostUid) return null;
    const user: SandboxUser = { uid: this.spawnUid, gid: this.spawnGid ?? AGENT_GID };
    const result = checkSandboxAccess({
      targets,
      user,
      hostUid,
      ownedRoots: this.opts.ownedRoots ?? [],
      onRepair: this.opts.onRepair,
    });
    return result.problems.length > 0 ? new SandboxAccessError(result.problems, user) : null;
  }

  /** bwrap exits before the kernel has emptied its pid namespace; see sandbox-exit.ts. */
  watchRunExit(spawnedPid: number): (() => Promise<boolean>) | undefined {
    const init = onlyChildOf(spawnedPid);
    return init ? () => waitUntilGone(init, { timeoutMs: SANDBOX_EXIT_WAIT_MS }) : undefined;
  }

  /** Drops a finished run's cgroups now instead of at the next sweep. */
  releaseRun(runId: string): void {
    if (this.cgroupLayout) removeRunCgroup(this.cgroupLayout, runId);
  }

  async cleanupOrphans(): Promise<number> {
    const gone: string[] = [];
    const killed = cleanupBwrapOrphans({
      runsDir: this.opts.runsDir,
      selfPid: process.pid,
      onRunGone: (runId) => {
        gone.push(runId);
        this.releaseRun(runId);
      },
    });
    if (this.cgroupLayout && gone.length > 0) {
      // Killed sandboxes leave their groups busy for a moment; release them once they are gone.
      // Only these runs' groups: the parent is shared by every NanoClaw on the machine, and
      // another one may have just created a group its sandbox has not joined yet.
      await new Promise((r) => setTimeout(r, 200));
      for (const runId of gone) this.releaseRun(runId);
    }
    return killed;
  }

  private coreArgs(): string[] {
    return [
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--uid',
      String(AGENT_UID),
      '--gid',
      String(AGENT_GID),
      '--cap-drop',
      'ALL',
      '--new-session',
      '--die-with-parent',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      // bwrap's /dev is an unsized tmpfs owned by the sandbox user: give /dev/shm its own
      // capped tmpfs, then make /dev itself read-only (device nodes stay usable).
      '--size',
      String(TMPFS_DEV_SHM_BYTES),
      '--tmpfs',
      '/dev/shm',
      '--remount-ro',
      '/dev',
    ];
  }

  /** Read-only system dirs; on merged-/usr hosts /bin, /lib… are symlinks and are recreated as such. */
  private systemArgs(): string[] {
    const args = ['--ro-bind', '/usr', '/usr'];
    for (const dir of SYSTEM_DIRS) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(dir);
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(dir), dir);
      else if (st.isDirectory()) args.push('--ro-bind', dir, dir);
    }
    for (const p of ETC_BINDS) if (fs.existsSync(p)) args.push('--ro-bind', p, p);
    for (const name of Object.keys(ETC_FILES)) {
      args.push('--ro-bind', path.join(this.opts.etcDir, name), `/etc/${name}`);
    }
    return args;
  }

  private writeEtcFiles(): void {
    fs.mkdirSync(this.opts.etcDir, { recursive: true, mode: 0o755 });
    // Not secret, and read by the sandbox user; a umask of 077 would have left it 0700.
    if ((fs.statSync(this.opts.etcDir).mode & 0o055) !== 0o055) fs.chmodSync(this.opts.etcDir, 0o755);
    for (const [name, content] of Object.entries(ETC_FILES)) {
      const file = path.join(this.opts.etcDir, name);
      let current: string | null = null;
      try {
        current = fs.readFileSync(file, 'utf8');
      } catch {
        // Missing: written below.
      }
      if (current !== content) fs.writeFileSync(file, content, { mode: 0o644 });
      // The sandbox user reads them; a umask of 077 would have left them 0600.
      if ((fs.statSync(file).mode & 0o044) !== 0o044) fs.chmodSync(file, 0o644);
    }
  }
}

/** Undoes `printfEscape`. */
function printfUnescape(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === 'x') {
      bytes.push(parseInt(text.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

/**
 * What a wrapped spawn hands bwrap, for tests and diagnostics: the argv bwrap
 * runs with (visible in /proc), the options it reads from fd 3 and the filter.
 */
export function unwrapSpawn(spawn: Pick<SpawnSpec, 'args'>): {
  visibleArgv: string[];
  options: string[];
  seccomp: Buffer;
  bindSources: string[];
} {
  const [, , , bwrapPath, data, filter, runId, ...rest] = spawn.args;
  const afterSources = rest.slice(rest.indexOf('--') + 1);
  const command = afterSources.slice(afterSources.indexOf('--') + 1);
  const options = printfUnescape(data).toString('utf8').split('\0').slice(0, -1);
  return {
    visibleArgv: [bwrapPath, '--args', '3', '--setenv', 'NANOCLAW_RUN_ID', runId, '--', ...command],
    options,
    seccomp: printfUnescape(filter),
    bindSources: rest.slice(0, rest.indexOf('--')),
  };
}
