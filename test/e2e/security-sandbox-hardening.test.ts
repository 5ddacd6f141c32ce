// Adversarial checks of the sandbox hardening of issue 9 against real bubblewrap:
// a probe "runner" (and perl, for raw syscalls) attacks from inside a sandbox
// built exactly as a run's sandbox is, and one real Claude Code run repeats the
// attacks through its Bash tool from a host launched with leaked fds.
// Covered: inherited fds, RLIMIT_NOFILE, seccomp (each denied call, the x32 ABI),
// the kernel keyring, sized /dev/shm, /tmp and HOME, read-only /dev, and host
// paths in /proc/1/cmdline.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { Group } from '../../src/core/types.js';
import { BwrapBackend } from '../../src/sandbox/bwrap.js';
import { detectCgroupLayout, sweepRunCgroups } from '../../src/sandbox/cgroup.js';
import { checkAdditionalMounts } from '../../src/sandbox/mount-policy.js';
import { buildMountTable } from '../../src/sandbox/mounts.js';
import { DENIED_SYSCALLS, SYSCALL_NUMBERS, seccompArchOf } from '../../src/sandbox/seccomp.js';
import type { MountSpec, SandboxLimits, SpawnSpec } from '../../src/sandbox/types.js';
import { assertBuilt, CLI, makeCliHome, REPO_ROOT, runCli, type CliHome } from '../support/cli.js';
import { lastToolResult, startFakeModelServer, type FakeModelServer } from '../support/fake-model-server.js';
import { makeGroup, makeSandboxWorld, memoryAudit, type SandboxWorld } from '../support/sandbox-fixtures.js';

const BWRAP = '/usr/bin/bwrap';
// perl-base is Essential on Debian, so perl is in every sandbox's /usr: it makes the raw syscalls.
for (const bin of [BWRAP, '/usr/bin/perl', '/bin/bash']) {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is required by the sandbox hardening suite; install it`);
}
if (spawnSync(BWRAP, ['--version']).status !== 0) throw new Error(`${BWRAP} does not run`);
const ARCH = seccompArchOf(process.arch);
if (!ARCH) throw new Error(`no seccomp table for ${process.arch}`);
const NUMBERS = SYSCALL_NUMBERS[ARCH];
const EPERM = 1;
const SIGSYS_STATUS = 128 + 31;

// Runs in place of runner.mjs; speaks just enough protocol (one output line, done) for
// the real agent-process spawn path, and PROBE_MODE picks the check.
const PROBE = String.raw`
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
const mode = process.env.PROBE_MODE;
const out = (o) => {
  process.stdout.write(JSON.stringify({ type: 'output', text: JSON.stringify(o) }) + '\n');
  process.stdout.write(JSON.stringify({ type: 'done' }) + '\n');
};
const code = (f) => { try { f(); return 'ok'; } catch (e) { return e.code || String(e); } };
const sh = (c) => spawnSync('/bin/sh', ['-c', c], { encoding: 'utf8' });
const fdsOf = (dir) => fs.readdirSync(dir).map((n) => {
  try { return n + '=' + fs.readlinkSync(dir + '/' + n); } catch (e) { return n + '=?'; }
});
if (mode === 'fds') {
  const self = fdsOf('/proc/self/fd');
  const child = sh('ls /proc/$$/fd').stdout.trim().split('\n');
  out({
    self, child,
    read50: code(() => fs.readdirSync('/proc/self/fd/50')),
    write50: code(() => fs.writeFileSync('/proc/self/fd/50/.claude/settings.json', '{}')),
    write51: code(() => fs.writeFileSync('/proc/self/fd/51', 'x')),
  });
} else if (mode === 'nofile') {
  const soft = sh('ulimit -n').stdout.trim();
  const hard = sh('ulimit -Hn').stdout.trim();
  const fds = []; let error = null;
  try { for (let i = 0; i < 100000; i++) fds.push(fs.openSync('/dev/null', 'r')); } catch (e) { error = e.code; }
  for (const fd of fds) fs.closeSync(fd);
  const raise = sh('ulimit -n 100000 2>&1; echo rc=$?').stdout.trim();
  out({ soft, hard, opened: fds.length, error, raise });
} else if (mode === 'syscalls') {
  const numbers = JSON.parse(process.env.PROBE_SYSCALLS);
  // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) and ptrace(PTRACE_TRACEME) succeed
  // unfiltered; every other call gets harmless arguments. Prints "name errno" (0 = it ran).
  const script = 'my %nr = (' + Object.entries(numbers).map(([k, v]) => k + '=>' + v).join(',') + ');' +
    'my %args = (keyctl => [0, -3, 0], add_key => [0, 0, 0, 0, -3]);' +
    'for my $n (sort keys %nr) { $! = 0; my $r = syscall($nr{$n}, @{$args{$n} // [0, 0, 0, 0, 0]});' +
    ' print "$n ", ($r == -1 ? $! + 0 : 0), "\n"; }';
  const r = sh("perl -e '" + script + "'");
  const errno = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ')).map(([n, e]) => [n, Number(e)]));
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  // An x32 call (getpid | the x32 bit) must kill the process with SIGSYS.
  const x32 = process.arch === 'x64' ? sh("perl -e 'syscall(0x40000000 + 39); print qq(alive)'") : null;
  out({
    errno, stderr: r.stderr,
    seccomp: /Seccomp:\s*(\d+)/.exec(status)?.[1],
    x32: x32 && { status: x32.status, signal: x32.signal, stdout: x32.stdout },
    keys: code(() => fs.readFileSync('/proc/keys', 'utf8')) === 'ok' ? fs.readFileSync('/proc/keys', 'utf8') : 'unreadable',
    nodeWorks: sh('node -e "console.log(6 * 7)"').stdout.trim(),
  });
} else if (mode === 'tmpfs') {
  const chunk = Buffer.alloc(1024 * 1024, 1);
  const fill = (dir) => {
    let written = 0; let error = null;
    for (let f = 0; f < 1000 && !error; f++) {
      const fd = fs.openSync(dir + '/fill' + f, 'w');
      try { for (let i = 0; i < 4; i++) written += fs.writeSync(fd, chunk); } catch (e) { error = e.code; }
      fs.closeSync(fd);
    }
    return { written, error };
  };
  out({
    shm: fill('/dev/shm'), tmp: fill('/tmp'), home: fill(process.env.HOME),
    devFile: code(() => fs.writeFileSync('/dev/evil', 'x')),
    devNull: code(() => fs.writeFileSync('/dev/null', 'x')),
  });
} else if (mode === 'extra') {
  out({
    list: code(() => fs.readdirSync('/workspace/extra/webapp')) === 'ok' ? fs.readdirSync('/workspace/extra/webapp') : null,
    child: sh('ls /proc/$$/fd').stdout.trim().split('\n'),
  });
} else if (mode === 'cmdline') {
  const all = {};
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try { all[pid] = fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\0').join(' '); } catch {}
  }
  out({ pid1: all['1'], all });
}
`;

interface ProbeResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  result: Record<string, unknown> | null;
}

function resultOf(stdout: string): Record<string, unknown> | null {
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line) as { type: string; text?: string };
    if (msg.type === 'output' && msg.text) return JSON.parse(msg.text) as Record<string, unknown>;
  }
  return null;
}

/** Spawns like src/runs/agent-process.ts does: own process group, three pipes. */
function runSpawn(spec: SpawnSpec, timeoutMs = 60_000): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.command, spec.args, {
      env: spec.env,
      cwd: spec.cwd,
      uid: spec.uid,
      gid: spec.gid,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, result: resultOf(stdout) });
    });
    child.stdin.end();
  });
}

const LIMITS: SandboxLimits = { memoryMb: 1024, pids: 64, fileSizeMb: 8, openFiles: 256 };

describe('sandbox hardening (real bubblewrap, attacks from inside)', () => {
  let world: SandboxWorld;
  let runnerEntry: string;
  let nodeModules: string;
  let runCounter = 0;

  beforeAll(() => {
    world = makeSandboxWorld('nc-harden-e2e-');
    runnerEntry = path.join(world.root, 'probe-runner.mjs');
    fs.writeFileSync(runnerEntry, PROBE, { mode: 0o644 });
    nodeModules = path.join(world.root, 'node_modules');
    fs.mkdirSync(nodeModules, { mode: 0o755 });
    // Main's folder with a .claude dir: the target of the leaked-fd escalation.
    fs.mkdirSync(path.join(world.groupsDir, 'main', '.claude'), { recursive: true, mode: 0o777 });
    fs.chmodSync(path.join(world.groupsDir, 'main'), 0o777);
  });

  afterAll(() => {
    const layout = detectCgroupLayout();
    if (layout) sweepRunCgroups(layout, 0);
    world?.cleanup();
  });

  function build(
    group: Group,
    env: Record<string, string>,
    limits = LIMITS,
    extraMounts: MountSpec[] = [],
  ): SpawnSpec {
    const runId = `run-${process.pid}-${++runCounter}`;
    const socketDir = path.join(world.runsDir, runId);
    fs.mkdirSync(socketDir, { recursive: true, mode: 0o755 });
    const mounts = buildMountTable({
      group,
      groupsDir: world.groupsDir,
      sessionsDir: world.sessionsDir,
      extraMounts,
    });
    const backend = new BwrapBackend({ runsDir: world.runsDir, etcDir: world.etcDir, bwrapPath: BWRAP });
    return backend.buildSpawn({
      runId,
      group,
      mounts,
      socketDir,
      runnerEntry,
      runnerNodeModules: nodeModules,
      env,
      limits,
    });
  }

  it('passes no inherited fd into the sandbox, even when the host process holds some (real spawn path)', async () => {
    assertBuilt();
    const spec = build(makeGroup('alpha'), { PROBE_MODE: 'fds' });
    const specFile = path.join(world.root, `spec-${runCounter}.json`);
    fs.writeFileSync(specFile, JSON.stringify(spec));
    // A process that holds a directory fd on main's folder (50) and a pipe (51) without
    // close-on-exec, as a shell or supervisor would hand them over, starts the sandbox
    // through the real agent-process spawn path (no host-start cleanup in between).
    const launcher = path.join(world.root, 'launcher.mjs');
    fs.writeFileSync(
      launcher,
      `import fs from 'node:fs';
const { startAgentProcess } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/runs/agent-process.js'))});
const held = fs.readdirSync('/proc/self/fd').filter((n) => n === '50' || n === '51');
const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const texts = [];
const agent = startAgentProcess({
  spawn: spec,
  start: { type: 'start', runId: 'fdprobe', prompt: 'x', group: { folder: 'alpha', isMain: false, name: 'alpha' }, assistantName: 'Andy', engine: 'echo', paths: spec.paths },
  idleTimeoutMs: 60000, runTimeoutMs: 60000, maxWallMs: 120000, maxOutputBytes: 1 << 20,
  onToolCall: async () => ({ ok: false, error: 'no tools' }),
  onOutput: (t) => void texts.push(t),
  onProtocolError: () => {}, onLog: () => {},
});
const res = await agent.done;
process.stdout.write(JSON.stringify({ held, res, texts }));
`,
    );
    const mainDir = path.join(world.groupsDir, 'main');
    const r = spawnSync(
      '/bin/bash',
      [
        '-c',
        'exec 50<"$1" 51> >(cat >/dev/null); exec "$2" "$3" "$4"',
        'x',
        mainDir,
        process.execPath,
        launcher,
        specFile,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    const launched = JSON.parse(r.stdout) as { held: string[]; texts: string[] };
    // The launcher really held both fds: without the wrapper they would reach the sandbox.
    expect(launched.held.sort()).toEqual(['50', '51']);
    const p = JSON.parse(launched.texts[0]) as {
      self: string[];
      child: string[];
      read50: string;
      write50: string;
      write51: string;
    };
    // A freshly exec'd child holds exactly what was inherited (Node's own fds are close-on-exec):
    // stdio and nothing else.
    expect(p.child.sort()).toEqual(['0', '1', '2']);
    // The runner itself: its own fds only, none numbered 50/51, none leading into the host tree.
    for (const entry of p.self) {
      const [n, target] = entry.split('=');
      expect({ n, target }).toEqual({
        n: expect.not.stringMatching(/^5[01]$/),
        target: expect.not.stringContaining(world.root),
      });
    }
    expect(p.read50).toBe('ENOENT');
    expect(p.write50).toBe('ENOENT');
    expect(p.write51).toBe('ENOENT');
    expect(fs.existsSync(path.join(mainDir, '.claude', 'settings.json'))).toBe(false);
  });

  it('the host start closes fds inherited from its launcher (bin/nanoclaw.mjs first step)', () => {
    assertBuilt();
    const mod = path.join(REPO_ROOT, 'dist/src/sandbox/inherited-fds.js');
    const code = `const { closeInheritedFds } = await import(${JSON.stringify(mod)});
const fs = await import('node:fs');
const before = fs.readdirSync('/proc/self/fd');
const closed = closeInheritedFds();
console.log(JSON.stringify({ before, closed, after: fs.readdirSync('/proc/self/fd') }));`;
    const r = spawnSync(
      '/bin/bash',
      [
        '-c',
        'exec 50</ 51> >(cat >/dev/null); exec "$1" --input-type=module -e "$2"',
        'x',
        process.execPath,
        code,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    const { before, closed, after } = JSON.parse(r.stdout) as {
      before: string[];
      closed: number[];
      after: string[];
    };
    expect(before).toEqual(expect.arrayContaining(['50', '51']));
    expect(closed).toEqual(expect.arrayContaining([50, 51]));
    expect(after).not.toContain('50');
    expect(after).not.toContain('51');
    // Node's own fds (all close-on-exec) are left alone: the process still works.
    expect(closed.every((fd) => fd > 2)).toBe(true);
    // ...and the bin does it before the CLI loads: only comments, the V8 memory setting and the
    // compile-cache switch between.
    expect(fs.readFileSync(path.join(REPO_ROOT, 'bin', 'nanoclaw.mjs'), 'utf8')).toMatch(
      /closeInheritedFds\(\);\s*(\/\/[^\n]*\n\s*)*(settleHeapWhenIdle\(\);\s*)?(\/\/[^\n]*\n\s*)*(module\.enableCompileCache\?\.\(\);\s*)?const \{ main \} = await import/,
    );
  });

  it('caps open files well below the host: ulimit -n is the knob and opening more fails with EMFILE', async () => {
    const r = await runSpawn(build(makeGroup('alpha'), { PROBE_MODE: 'nofile' }));
    const p = r.result as { soft: string; hard: string; opened: number; error: string; raise: string };
    expect(p, r.stderr).toBeTruthy();
    expect(p.soft).toBe('256');
    expect(p.hard).toBe('256');
    expect(p.error).toBe('EMFILE');
    expect(p.opened).toBeLessThan(256);
    expect(p.opened).toBeGreaterThan(200);
    expect(p.raise).not.toBe('rc=0');
  });

  it('denies every listed syscall with EPERM under seccomp, kills x32 calls, and node still works', async () => {
    const r = await runSpawn(
      build(makeGroup('alpha'), { PROBE_MODE: 'syscalls', PROBE_SYSCALLS: JSON.stringify(NUMBERS) }),
    );
    const p = r.result as {
      errno: Record<string, number>;
      seccomp: string;
      x32: { status: number | null; signal: string | null; stdout: string } | null;
      nodeWorks: string;
    };
    expect(p, r.stderr).toBeTruthy();
    expect(p.seccomp).toBe('2');
    expect(Object.keys(p.errno).sort()).toEqual(Object.keys(DENIED_SYSCALLS).sort());
    for (const name of Object.keys(DENIED_SYSCALLS)) {
      expect({ name, errno: p.errno[name] }).toEqual({ name, errno: EPERM });
    }
    if (ARCH === 'x64') {
      expect(p.x32?.stdout).not.toContain('alive');
      // sh reports the killed perl as 128+SIGSYS, or execs it and node sees the signal.
      expect(p.x32?.status === SIGSYS_STATUS || p.x32?.signal === 'SIGSYS').toBe(true);
    }
    expect(p.nodeWorks).toBe('42');
  });

  it('keeps the host kernel keyring out of reach: keyctl, add_key and request_key fail', async () => {
    // Distinguishing: on the host, keyctl(GET_KEYRING_ID, session) succeeds (perl returns an id).
    const host = spawnSync('perl', ['-e', `print syscall(${NUMBERS.keyctl}, 0, -3, 0)`], {
      encoding: 'utf8',
    });
    expect(Number(host.stdout)).toBeGreaterThan(0);
    const r = await runSpawn(
      build(makeGroup('alpha'), { PROBE_MODE: 'syscalls', PROBE_SYSCALLS: JSON.stringify(NUMBERS) }),
    );
    const p = r.result as { errno: Record<string, number>; keys: string };
    expect(p, r.stderr).toBeTruthy();
    expect([p.errno.keyctl, p.errno.add_key, p.errno.request_key]).toEqual([EPERM, EPERM, EPERM]);
    expect(p.keys === 'unreadable' || p.keys.trim() === '').toBe(true);
  });

  it('caps /dev/shm, /tmp and HOME; /dev itself is read-only and /dev/null still works', async () => {
    const r = await runSpawn(build(makeGroup('alpha'), { PROBE_MODE: 'tmpfs' }), 120_000);
    const p = r.result as Record<string, { written: number; error: string | null } | string>;
    expect(p, r.stderr).toBeTruthy();
    const mib = 1024 * 1024;
    for (const [dir, capMib] of [
      ['shm', 64],
      ['tmp', 64],
      ['home', 256],
    ] as const) {
      const fill = p[dir] as { written: number; error: string | null };
      expect({ dir, error: fill.error }).toEqual({ dir, error: 'ENOSPC' });
      expect(fill.written).toBeLessThanOrEqual(capMib * mib);
    }
    expect(p.devFile).toBe('EROFS');
    expect(p.devNull).toBe('ok');
  });

  it('binds additional mounts by fd: a source swapped for a symlink to ~/.ssh after the check is refused', async () => {
    const projects = path.join(world.homeDir, 'projects');
    fs.mkdirSync(path.join(projects, 'webapp'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(projects, 'webapp', 'hello.txt'), 'hi');
    fs.mkdirSync(path.join(world.homeDir, '.ssh'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(world.homeDir, '.ssh', 'id_rsa'), 'SSH-CANARY');
    const group = makeGroup('alpha');
    const checked = () => {
      const r = checkAdditionalMounts({
        group,
        requested: [{ hostPath: '~/projects/webapp' }],
        allowlist: { allowedRoots: [{ path: '~/projects', allowReadWrite: false }], nonMainReadOnly: true },
        homeDir: world.homeDir,
        audit: memoryAudit(),
        runId: null,
      });
      if (!r.ok) throw new Error(r.message);
      return r.mounts;
    };
    const ok = await runSpawn(build(group, { PROBE_MODE: 'extra' }, LIMITS, checked()));
    expect(ok.result, ok.stderr).toEqual({ list: ['hello.txt'], child: ['0', '1', '2'] });

    // The swap lands after the policy check and after the argv is built, right before spawn.
    const spec = build(group, { PROBE_MODE: 'extra' }, LIMITS, checked());
    fs.renameSync(path.join(projects, 'webapp'), path.join(projects, 'webapp-old'));
    fs.symlinkSync(path.join(world.homeDir, '.ssh'), path.join(projects, 'webapp'));
    const swapped = await runSpawn(spec);
    expect(swapped.result).toBeNull();
    expect(swapped.code).toBe(126);
    expect(swapped.stderr).toMatch(/changed after the mount policy checked it/);
    expect(JSON.stringify(swapped)).not.toContain('id_rsa');
  });

  it('shows no host path in /proc/1/cmdline or any cmdline inside', async () => {
    const r = await runSpawn(build(makeGroup('alpha'), { PROBE_MODE: 'cmdline' }));
    const p = r.result as { pid1: string; all: Record<string, string> };
    expect(p, r.stderr).toBeTruthy();
    expect(p.pid1).toMatch(/^\/usr\/bin\/bwrap --args 3 /);
    for (const [pid, cmdline] of Object.entries(p.all)) {
      expect({ pid, cmdline }).toEqual({ pid, cmdline: expect.not.stringContaining(world.root) });
    }
  });
});

describe('the same attacks through the real agent (Claude Code, host launched with leaked fds)', () => {
  let home: CliHome | undefined;
  let fake: FakeModelServer | undefined;
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
    home?.cleanup();
    home = undefined;
  });

  it('a non-main agent finds no leaked fd, no keyring, no ptrace, a small fd limit and capped /dev/shm', async () => {
    fake = await startFakeModelServer({ script: [] });
    home = makeCliHome({
      NANOCLAW_ENGINE: 'claude-code',
      ANTHROPIC_API_KEY: 'sk-ant-api03-hardening-e2e-credential',
      ANTHROPIC_BASE_URL: fake.url,
    });
    const h = home;
    h.writeConfig({ maxRetries: 0, retryBaseMs: 50, sandboxLimits: { openFiles: 300 } });
    const added = await runCli(
      ['groups', 'add', 'local:family', '--name', 'family', '--folder', 'family', '--no-trigger'],
      h.env,
    );
    expect(added.stderr).toBe('');
    const mainDir = path.join(h.dir, 'groups', 'main');
    fs.mkdirSync(path.join(mainDir, '.claude'), { recursive: true, mode: 0o777 });
    fs.chmodSync(mainDir, 0o777);
    fs.chmodSync(path.join(mainDir, '.claude'), 0o777);

    const script = [
      'echo canary:start',
      // Every process of the run (runner, Claude Code, this shell): any fd 50/51, and through
      // /proc/<pid>/fd/50 main's folder, which the launcher held.
      'for p in /proc/[0-9]*; do for n in 50 51; do [ -e $p/fd/$n ] && echo "leak|$p|$n"; done; done',
      'for p in /proc/[0-9]*; do ls $p/fd/50/ >/dev/null 2>&1 && echo read50:ok; done',
      'for p in /proc/[0-9]*; do echo "{}" 2>/dev/null > $p/fd/50/.claude/settings.json && echo write50:ok; done',
      `perl -e '$! = 0; my $r = syscall(${NUMBERS.keyctl}, 0, -3, 0); print "keyctl|$r|", $! + 0, "\\n"'`,
      `perl -e '$! = 0; my $r = syscall(${NUMBERS.ptrace}, 16, 1, 0, 0); print "ptrace|$r|", $! + 0, "\\n"'`,
      'echo "nofile|$(ulimit -n)"',
      'head -c 100000000 /dev/zero > /dev/shm/fill 2>/dev/null; echo "shm|$(stat -c %s /dev/shm/fill)"',
      'echo "pid1|$(tr "\\0" " " < /proc/1/cmdline)"',
      'echo canary:end',
    ].join('\n');
    const results: Array<{ text: string; isError: boolean }> = [];
    fake.setScript([
      { toolUse: { name: 'Bash', input: { command: script, timeout: 60_000, description: 'probe' } } },
      (req) => {
        results.push(lastToolResult(req) ?? { text: '(no tool result)', isError: true });
        return { text: 'all checks done' };
      },
    ]);
    // The host is started the way a shell script or supervisor might: with a directory
    // fd on main's folder (50) and a pipe (51) that are not close-on-exec.
    const res = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        '/bin/bash',
        [
          '-c',
          'exec 50<"$1" 51> >(cat >/dev/null); exec "$2" "$3" chat --json',
          'x',
          mainDir,
          process.execPath,
          CLI,
        ],
        { env: h.env, cwd: h.dir },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(`${JSON.stringify({ text: 'please run the checks', chat: 'local:family' })}\n`);
    });
    const text = results[0]?.text ?? '';
    expect(text, `${text}\n${res.stderr}`).toContain('canary:end');
    const field = (name: string) => new RegExp(`^${name}\\|(.*)$`, 'm').exec(text)?.[1] ?? '';
    expect(text).not.toContain('leak|');
    expect(text).not.toContain('read50:ok');
    expect(text).not.toContain('write50:ok');
    expect(field('keyctl')).toBe(`-1|${EPERM}`);
    expect(field('ptrace')).toBe(`-1|${EPERM}`);
    expect(field('nofile')).toBe('300');
    expect(Number(field('shm'))).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(Number(field('shm'))).toBeGreaterThan(0);
    expect(field('pid1')).not.toContain(h.dir);
    expect(fs.existsSync(path.join(mainDir, '.claude', 'settings.json'))).toBe(false);
    expect(res.stdout).toContain('all checks done');
  }, 180_000);
});
