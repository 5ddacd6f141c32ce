// Real bubblewrap: starts sandboxes with a probe "runner" and checks from inside
// that the isolation of SPEC §8/§10 and the resource limits actually hold.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Group } from '../../src/core/types.js';
import { BwrapBackend, type BwrapOptions } from '../../src/sandbox/bwrap.js';
import { detectCgroupLayout, sweepRunCgroups } from '../../src/sandbox/cgroup.js';
import { buildMountTable } from '../../src/sandbox/mounts.js';
import { scanSandboxes } from '../../src/sandbox/orphans.js';
import type { SandboxLimits, SpawnSpec } from '../../src/sandbox/types.js';
import { makeGroup, makeSandboxWorld, type SandboxWorld } from '../support/sandbox-fixtures.js';

const BWRAP = '/usr/bin/bwrap';
if (spawnSync(BWRAP, ['--version']).status !== 0) {
  throw new Error(
    `bubblewrap is required for this test but ${BWRAP} does not run; install it (apt install bubblewrap)`,
  );
}

const FAKE_SECRET = 'sk-ant-FAKE-host-secret-must-not-leak';
process.env.ANTHROPIC_API_KEY = FAKE_SECRET;

// The probe runs inside the sandbox in place of runner.mjs; PROBE_MODE picks the check.
const PROBE = String.raw`
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { spawn } from 'node:child_process';
const mode = process.env.PROBE_MODE;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const tryDo = (f) => { try { f(); return 'ok'; } catch (e) { return e.code || String(e); } };
const connect = (host, port) => new Promise((resolve) => {
  const s = net.connect({ host, port, timeout: 2000 });
  s.on('connect', () => { s.destroy(); resolve('connected'); });
  s.on('error', (e) => resolve(e.code));
  s.on('timeout', () => { s.destroy(); resolve('timeout'); });
});
if (mode === 'inspect') {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const paths = {};
  for (const p of (process.env.PROBE_PATHS || '').split(':').filter(Boolean)) paths[p] = fs.existsSync(p);
  out({
    uid: process.getuid(), gid: process.getgid(), cwd: process.cwd(), home: process.env.HOME,
    capEff: /CapEff:\s*(\w+)/.exec(status)[1],
    pid1: fs.readFileSync('/proc/1/cmdline', 'utf8').split('\0')[0],
    pid1Environ: fs.readFileSync('/proc/1/environ', 'utf8'),
    selfEnviron: fs.readFileSync('/proc/self/environ', 'utf8'),
    procPids: fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length,
    ifaces: Object.keys(os.networkInterfaces()),
    hostLoopback: await connect('127.0.0.1', Number(process.env.PROBE_PORT)),
    hostAddr: process.env.PROBE_HOST_ADDR ? await connect(process.env.PROBE_HOST_ADDR, Number(process.env.PROBE_PORT)) : 'none',
    resolv: fs.existsSync('/etc/resolv.conf'),
    paths,
    homeEntries: fs.readdirSync('/home'),
    groupWrite: tryDo(() => fs.writeFileSync('/workspace/group/probe.txt', 'hi')),
    globalWrite: tryDo(() => fs.writeFileSync('/workspace/global/probe.txt', 'hi')),
    claudeWrite: tryDo(() => fs.writeFileSync('/home/agent/.claude/probe.txt', 'hi')),
    usrWrite: tryDo(() => fs.writeFileSync('/usr/probe.txt', 'hi')),
    rootWrite: tryDo(() => fs.writeFileSync('/probe.txt', 'hi')),
    groupsList: fs.existsSync('/workspace/groups') ? fs.readdirSync('/workspace/groups').sort() : null,
    groupsWrite: tryDo(() => fs.writeFileSync('/workspace/groups/beta/probe.txt', 'hi')),
    otherRead: tryDo(() => fs.readFileSync('/workspace/groups/beta/secret.txt', 'utf8')),
    passwd: fs.readFileSync('/etc/passwd', 'utf8'),
    sockets: fs.readdirSync('/run/nanoclaw'),
  });
} else if (mode === 'forkbomb') {
  const kids = []; let spawned = 0; let failed = 0;
  for (let i = 0; i < 400; i++) {
    try { const c = spawn('/bin/sleep', ['5'], { stdio: 'ignore' }); c.on('error', () => failed++); c.on('spawn', () => spawned++); kids.push(c); }
    catch { failed++; }
  }
  setTimeout(() => {
    out({ spawned, failed, procPids: fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length });
    for (const k of kids) try { k.kill('SIGKILL'); } catch {}
    process.exit(0);
  }, 1500);
} else if (mode === 'crowd') {
  // Many detached processes, as a fork bomb leaves them; then wait to be killed.
  let spawned = 0;
  for (let i = 0; i < 250; i++) {
    try { spawn('/bin/sleep', [process.env.PROBE_MARK], { stdio: 'ignore', detached: true }).on('spawn', () => { if (++spawned === 250) out({ spawned }); }); } catch {}
  }
  setTimeout(() => process.exit(0), 60_000);
} else if (mode === 'sleep') {
  setTimeout(() => process.exit(0), 60_000);
} else if (mode === 'memhog') {
  const keep = [];
  for (let i = 0; i < 64; i++) { keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); out({ allocatedMb: (i + 1) * 16 }); }
  out({ survived: true });
} else if (mode === 'bigfile') {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const fd = fs.openSync('/workspace/group/big.bin', 'w');
  let written = 0; let error = null;
  try { for (let i = 0; i < 64; i++) written += fs.writeSync(fd, chunk); } catch (e) { error = e.code; }
  fs.closeSync(fd);
  out({ written, error, size: fs.statSync('/workspace/group/big.bin').size });
}
`;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  lines: Record<string, unknown>[];
}

/** Starts a built sandbox the way the host does, with piped stdio. */
function spawnSandbox(spec: SpawnSpec) {
  return spawn(spec.command, spec.args, {
    env: spec.env,
    cwd: spec.cwd,
    uid: spec.uid,
    gid: spec.gid,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function runSpawn(spec: SpawnSpec, timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnSandbox(spec);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, signal, stdout, stderr, lines });
    });
  });
}

const LIMITS: SandboxLimits = { memoryMb: 256, pids: 64, fileSizeMb: 8 };

describe('bwrap sandbox (real bubblewrap)', () => {
  let world: SandboxWorld;
  let runnerEntry: string;
  let nodeModules: string;
  let server: net.Server;
  let port: number;
  let runCounter = 0;

  beforeAll(async () => {
    world = makeSandboxWorld('nc-bwrap-e2e-');
    runnerEntry = path.join(world.root, 'probe-runner.mjs');
    fs.writeFileSync(runnerEntry, PROBE, { mode: 0o644 });
    nodeModules = path.join(world.root, 'node_modules');
    fs.mkdirSync(nodeModules, { mode: 0o755 });
    fs.writeFileSync(path.join(world.groupsDir, 'placeholder'), '');
    // A second group with a private file: no other non-main group may see it.
    buildMountTable({
      group: makeGroup('beta'),
      groupsDir: world.groupsDir,
      sessionsDir: world.sessionsDir,
      extraMounts: [],
    });
    fs.writeFileSync(path.join(world.groupsDir, 'beta', 'secret.txt'), 'beta-private');
    server = net.createServer((s) => s.end('hello'));
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    port = (server.address() as net.AddressInfo).port;
  });

  afterAll(() => {
    const layout = detectCgroupLayout();
    if (layout) sweepRunCgroups(layout, 0);
    server?.close();
    world?.cleanup();
  });

  function backend(extra: Partial<BwrapOptions> = {}): BwrapBackend {
    return new BwrapBackend({ runsDir: world.runsDir, etcDir: world.etcDir, bwrapPath: BWRAP, ...extra });
  }

  function build(b: BwrapBackend, group: Group, env: Record<string, string>, limits = LIMITS): SpawnSpec {
    const runId = `run-${process.pid}-${++runCounter}`;
    const socketDir = path.join(world.runsDir, runId);
    fs.mkdirSync(socketDir, { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(socketDir, 'model.sock.placeholder'), '');
    const mounts = buildMountTable({
      group,
      groupsDir: world.groupsDir,
      sessionsDir: world.sessionsDir,
      extraMounts: [],
    });
    return b.buildSpawn({
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

  function hostAddress(): string | undefined {
    const nets = Object.values(os.networkInterfaces()).flat();
    return nets.find((n) => n && n.family === 'IPv4' && !n.internal)?.address;
  }

  it('is available on this host and starts a trivial sandbox', async () => {
    const a = await backend().available();
    expect(a.detail).toMatch(/bubblewrap/);
    expect(a.ok).toBe(true);
  });

  it('isolates a non-main group: user, caps, pid/net namespaces, file system, environment', async () => {
    const forbidden = [
      '/root',
      path.resolve('.'),
      path.resolve('store'),
      world.configDir,
      world.sessionsDir,
      '/work',
    ];
    const spec = build(backend(), makeGroup('alpha'), {
      PROBE_MODE: 'inspect',
      PROBE_PORT: String(port),
      PROBE_HOST_ADDR: hostAddress() ?? '',
      PROBE_PATHS: [...forbidden, '/workspace/groups', '/workspace/group', '/etc/ssl'].join(':'),
    });
    expect(spec.args.join(' ')).not.toContain(FAKE_SECRET);
    expect(JSON.stringify(spec.env)).not.toContain(FAKE_SECRET);
    const r = await runSpawn(spec);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const p = r.lines[0] as Record<string, unknown> & { paths: Record<string, boolean> };
    expect(p.uid).toBe(1000);
    expect(p.gid).toBe(1000);
    expect(p.capEff).toBe('0000000000000000');
    expect(p.cwd).toBe('/workspace/group');
    expect(p.home).toBe('/home/agent');
    expect(path.basename(String(p.pid1))).toBe('bwrap');
    expect(p.procPids).toBeLessThanOrEqual(3);
    expect(p.ifaces).toEqual(['lo']);
    expect(p.hostLoopback).toBe('ECONNREFUSED');
    if (hostAddress()) expect(p.hostAddr).toMatch(/ENETUNREACH|EHOSTUNREACH|timeout/);
    expect(p.resolv).toBe(false);
    expect(String(p.pid1Environ)).not.toContain(FAKE_SECRET);
    expect(String(p.pid1Environ)).not.toContain('ANTHROPIC');
    expect(String(p.selfEnviron)).not.toContain(FAKE_SECRET);
    for (const f of forbidden) expect(p.paths[f], f).toBe(false);
    expect(p.paths['/workspace/groups']).toBe(false);
    expect(p.paths['/workspace/group']).toBe(true);
    expect(p.paths['/etc/ssl']).toBe(true);
    expect(p.homeEntries).toEqual(['agent']);
    expect(p.groupWrite).toBe('ok');
    expect(p.globalWrite).toBe('EROFS');
    expect(p.claudeWrite).toBe('ok');
    expect(p.usrWrite).toMatch(/EROFS|EACCES/);
    expect(p.rootWrite).toMatch(/EROFS|EACCES/);
    expect(p.otherRead).toBe('ENOENT');
    expect(p.passwd).toContain('agent:x:1000:1000');
    expect(p.sockets).toEqual(['model.sock.placeholder']);
    expect(fs.readFileSync(path.join(world.groupsDir, 'alpha', 'probe.txt'), 'utf8')).toBe('hi');
    expect(fs.existsSync(path.join(world.sessionsDir, 'alpha', 'probe.txt'))).toBe(true);
    expect(fs.existsSync(path.join(world.sessionsDir, 'beta', 'probe.txt'))).toBe(false);
  });

  it('gives main its group rw, global rw and the other groups read-only', async () => {
    const spec = build(backend(), makeGroup('main', { isMain: true }), {
      PROBE_MODE: 'inspect',
      PROBE_PORT: String(port),
    });
    const r = await runSpawn(spec);
    expect(r.code).toBe(0);
    const p = r.lines[0];
    expect(p.groupWrite).toBe('ok');
    expect(p.globalWrite).toBe('ok');
    expect(p.groupsList).toEqual(expect.arrayContaining(['alpha', 'beta', 'global', 'main']));
    expect(p.otherRead).toBe('ok');
    expect(p.groupsWrite).toBe('EROFS');
  });

  for (const mode of ['auto', 'off'] as const) {
    describe(`limits with cgroups=${mode}`, () => {
      it('contains a fork bomb and the host stays responsive', async () => {
        const spec = build(backend({ cgroups: mode }), makeGroup('alpha'), { PROBE_MODE: 'forkbomb' });
        const started = Date.now();
        const bomb = runSpawn(spec);
        // The host can still start processes while the bomb runs.
        await new Promise((r) => setTimeout(r, 300));
        const host = spawnSync('/bin/true', { timeout: 5000 });
        expect(host.status).toBe(0);
        const r = await bomb;
        expect(r.code).toBe(0);
        const p = r.lines[0] as { spawned: number; failed: number; procPids: number };
        expect(p.failed).toBeGreaterThan(0);
        expect(p.spawned).toBeLessThan(LIMITS.pids);
        expect(p.procPids).toBeLessThanOrEqual(LIMITS.pids);
        expect(Date.now() - started).toBeLessThan(15_000);
      });

      it('kills a memory hog', async () => {
        const spec = build(backend({ cgroups: mode }), makeGroup('alpha'), { PROBE_MODE: 'memhog' });
        const r = await runSpawn(spec);
        if (process.env.SANDBOX_E2E_DEBUG)
          console.log(mode, r.code, r.signal, r.stderr.slice(-300), r.lines.at(-1));
        expect(r.stdout).not.toContain('survived');
        expect(r.code === 0 && r.signal === null).toBe(false);
        const allocated = r.lines.map((l) => Number(l.allocatedMb ?? 0));
        expect(Math.max(0, ...allocated)).toBeLessThanOrEqual(LIMITS.memoryMb);
      });

      it('stops a huge file write at the file size limit', async () => {
        const spec = build(backend({ cgroups: mode }), makeGroup('alpha'), { PROBE_MODE: 'bigfile' });
        const r = await runSpawn(spec);
        const size = fs.statSync(path.join(world.groupsDir, 'alpha', 'big.bin')).size;
        expect(size).toBeLessThanOrEqual(LIMITS.fileSizeMb * 1024 * 1024);
        // Either node reports EFBIG or SIGXFSZ ends it; both mean the write failed.
        if (r.lines[0]) expect(r.lines[0].error).toBe('EFBIG');
        else expect(r.code).not.toBe(0);
      });
    });
  }

  it('a killed sandbox has no process left once its exit wait resolves', async () => {
    const b = backend();
    const mark = String(700_000 + Math.floor(Math.random() * 90_000));
    const leftovers = (): string[] =>
      spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter((l) => l.trim() === `/bin/sleep ${mark}`);
    // The kernel empties a killed namespace after bwrap's own exit; without the wait this
    // sees some of the 250 processes about one time in four.
    for (let round = 0; round < 3; round++) {
      const spec = build(
        b,
        makeGroup('alpha'),
        { PROBE_MODE: 'crowd', PROBE_MARK: mark },
        { ...LIMITS, pids: 400 },
      );
      const child = spawnSandbox(spec);
      await new Promise<void>((resolve) =>
        child.stdout.on('data', (d: Buffer) => d.includes('spawned') && resolve()),
      );
      expect(leftovers().length).toBe(250);
      const emptied = b.watchRunExit(child.pid!);
      expect(emptied).toBeDefined();
      const closed = new Promise((r) => child.on('close', r));
      child.kill('SIGKILL');
      await closed;
      expect(await emptied!()).toBe(true);
      expect(leftovers()).toEqual([]);
    }
  });

  it('uses a per-run cgroup when the host allows it', () => {
    if (!detectCgroupLayout()) return;
    const spec = build(backend(), makeGroup('alpha'), {});
    expect(spec.command).toBe('/bin/bash');
    expect(spec.args.some((a) => a.endsWith('/cgroup.procs'))).toBe(true);
  });

  it('finds and kills an orphaned sandbox from a previous host and removes its run dir', async () => {
    const b = backend();
    const spec = build(b, makeGroup('alpha'), { PROBE_MODE: 'sleep' });
    // A process that is not this host stands in for the host that died: its sandbox is an orphan to us.
    const runDir = path.join(world.runsDir, `run-${process.pid}-${runCounter}`);
    expect(fs.existsSync(runDir)).toBe(true);
    const stranger = spawn('/bin/sh', ['-c', '"$@"; exit 0', 'sh', spec.command, ...spec.args], {
      env: spec.env,
      uid: spec.uid,
      gid: spec.gid,
      cwd: '/',
      stdio: 'ignore',
    });
    const strangerDone = new Promise((r) => stranger.on('close', r));
    await new Promise((r) => setTimeout(r, 300));
    const before = scanSandboxes({ runsDir: world.runsDir, selfPid: process.pid });
    expect(before.orphans.map((o) => o.runId)).toContain(path.basename(runDir));
    const killed = await b.cleanupOrphans();
    expect(killed).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 300));
    const after = scanSandboxes({ runsDir: world.runsDir, selfPid: process.pid });
    expect(after.orphans).toEqual([]);
    await strangerDone;
    expect(fs.existsSync(runDir)).toBe(false);
  });
});
