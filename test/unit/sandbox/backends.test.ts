import fs from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AppleBackend } from '../../../src/sandbox/apple.js';
import { BwrapBackend, unwrapSpawn } from '../../../src/sandbox/bwrap.js';
import { DockerBackend } from '../../../src/sandbox/docker.js';
import type { CommandRunner } from '../../../src/sandbox/exec.js';
import { buildMountTable } from '../../../src/sandbox/mounts.js';
import { NoneBackend } from '../../../src/sandbox/none.js';
import { runIdFromArgv, runsDirOwnerId } from '../../../src/sandbox/orphans.js';
import { dockerSeccompProfile } from '../../../src/sandbox/seccomp.js';
import type { SandboxRunSpec } from '../../../src/sandbox/types.js';
import { makeGroup, makeSandboxWorld, type SandboxWorld } from '../../support/sandbox-fixtures.js';

const PLACEHOLDER = 'nc-placeholder-123';

describe('sandbox backends (argv)', () => {
  let w: SandboxWorld;
  beforeEach(() => (w = makeSandboxWorld('nc-backends-')));
  afterEach(() => w.cleanup());

  function spec(folder = 'family', isMain = false): SandboxRunSpec {
    const group = makeGroup(folder, { isMain });
    const runId = 'run1';
    const socketDir = path.join(w.runsDir, runId);
    fs.mkdirSync(socketDir, { recursive: true });
    return {
      runId,
      group,
      mounts: buildMountTable({ group, groupsDir: w.groupsDir, sessionsDir: w.sessionsDir, extraMounts: [] }),
      socketDir,
      runnerEntry: path.join(w.root, 'runner.mjs'),
      runnerNodeModules: path.join(w.root, 'node_modules'),
      env: { ANTHROPIC_API_KEY: PLACEHOLDER, ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' },
      limits: { memoryMb: 512, pids: 128, fileSizeMb: 64 },
    };
  }

  const pairAfter = (args: string[], flag: string): string[] =>
    args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

  describe('docker', () => {
    const calls: string[][] = [];
    const exec: CommandRunner = async (cmd, args) => {
      calls.push([cmd, ...args]);
      if (args[0] === 'ps') return { ok: true, stdout: 'abc\ndef\n', stderr: '' };
      return { ok: true, stdout: '', stderr: '' };
    };

    it('builds a hardened run with mounts, limits and env values kept out of argv', () => {
      const profile = path.join(w.root, 'docker-seccomp.json');
      const s = new DockerBackend({
        binary: 'podman',
        exec,
        seccompProfilePath: profile,
        hostEnv: { PATH: '/usr/bin', SECRET_X: 'no' },
        runsDir: w.runsDir,
      }).buildSpawn(spec());
      expect(s.command).toBe('podman');
      const a = s.args;
      expect(a.slice(0, 3)).toEqual(['run', '--rm', '-i']);
      for (const [flag, value] of [
        ['--name', 'nanoclaw-run1'],
        ['--label', 'nanoclaw.run=run1'],
        ['--network', 'none'],
        ['--cap-drop', 'ALL'],
        ['--security-opt', 'no-new-privileges'],
        ['--user', '1000:1000'],
        ['--pids-limit', '128'],
        ['--memory', '512m'],
        ['--workdir', '/workspace/group'],
      ]) {
        expect(pairAfter(a, flag)).toContain(value);
      }
      expect(a).toContain('--read-only');
      expect(pairAfter(a, '--security-opt')).toContain(`seccomp=${profile}`);
      expect(fs.readFileSync(profile, 'utf8')).toBe(dockerSeccompProfile());
      expect(pairAfter(a, '--tmpfs')[0]).toBe('/tmp:size=64m');
      expect(pairAfter(a, '--tmpfs')[1]).toMatch(/^\/home\/agent:.*size=256m/);
      expect(pairAfter(a, '--shm-size')).toEqual([String(64 * 1024 * 1024)]);
      expect(pairAfter(a, '--ulimit')).toContain(`fsize=${64 * 1024 * 1024}`);
      expect(pairAfter(a, '--ulimit')).toContain('nofile=1024');
      const vols = pairAfter(a, '-v');
      expect(vols).toContain(`${path.join(w.groupsDir, 'family')}:/workspace/group`);
      expect(vols).toContain(`${path.join(w.groupsDir, 'global')}:/workspace/global:ro`);
      expect(vols).toContain(`${path.join(w.runsDir, 'run1')}:/run/nanoclaw`);
      expect(a.slice(-3)).toEqual(['nanoclaw-agent:latest', 'node', '/opt/nanoclaw/runner.mjs']);
      expect(pairAfter(a, '-e')).toContain('ANTHROPIC_API_KEY');
      expect(a.join(' ')).not.toContain(PLACEHOLDER);
      expect(s.env.ANTHROPIC_API_KEY).toBe(PLACEHOLDER);
      expect(s.env.SECRET_X).toBeUndefined();
    });

    it('checks the engine with info and removes only the labelled containers of its own runs dir', async () => {
      calls.length = 0;
      const b = new DockerBackend({
        exec,
        seccompProfilePath: path.join(w.root, 'p.json'),
        runsDir: w.runsDir,
      });
      expect((await b.available()).ok).toBe(true);
      expect(calls[0]).toEqual(['docker', 'info']);
      expect(await b.cleanupOrphans()).toBe(2);
      const owner = `nanoclaw.owner=${runsDirOwnerId(w.runsDir)}`;
      expect(calls.at(-2)).toEqual([
        'docker',
        'ps',
        '-aq',
        '--filter',
        'label=nanoclaw.run',
        '--filter',
        `label=${owner}`,
      ]);
      expect(calls.at(-1)).toEqual(['docker', 'rm', '-f', 'abc', 'def']);
      // Every run carries that owner label; another data dir's runs dir has another owner.
      const args = b.buildSpawn(spec()).args;
      expect(pairAfter(args, '--label')).toContain(owner);
      expect(runsDirOwnerId(path.join(w.root, 'other', 'data', 'runs'))).not.toBe(runsDirOwnerId(w.runsDir));
    });

    it('reports an unreachable engine', async () => {
      const down: CommandRunner = async () => ({
        ok: false,
        stdout: '',
        stderr: 'Cannot connect to the Docker daemon',
      });
      const a = await new DockerBackend({
        exec: down,
        seccompProfilePath: path.join(w.root, 'p.json'),
        runsDir: w.runsDir,
      }).available();
      expect(a).toEqual({ ok: false, detail: expect.stringContaining('Cannot connect') });
    });
  });

  describe('apple', () => {
    const exec: CommandRunner = async () => ({ ok: true, stdout: '', stderr: '' });

    it('is unavailable unless unenforced egress is accepted', async () => {
      const runsDir = w.runsDir;
      expect((await new AppleBackend({ allowUnenforcedEgress: false, exec, runsDir }).available()).ok).toBe(
        false,
      );
      expect((await new AppleBackend({ allowUnenforcedEgress: true, exec, runsDir }).available()).ok).toBe(
        true,
      );
    });

    it('removes only the containers named for its own runs dir', async () => {
      const mine = `nanoclaw-${runsDirOwnerId(w.runsDir)}-run1`;
      const theirs = `nanoclaw-${runsDirOwnerId(path.join(w.root, 'other'))}-run2`;
      const calls: string[][] = [];
      const listing: CommandRunner = async (cmd, args) => {
        calls.push([cmd, ...args]);
        return { ok: true, stdout: args[0] === 'list' ? `${mine}\n${theirs}\nunrelated\n` : '', stderr: '' };
      };
      const b = new AppleBackend({ allowUnenforcedEgress: true, exec: listing, runsDir: w.runsDir });
      expect(pairAfter(b.buildSpawn(spec()).args, '--name')).toEqual([mine]);
      expect(await b.cleanupOrphans()).toBe(1);
      expect(calls.at(-1)).toEqual(['container', 'delete', '--force', mine]);
    });

    it('builds a run with readonly mounts, user and memory', () => {
      const s = new AppleBackend({ allowUnenforcedEgress: true, exec, runsDir: w.runsDir }).buildSpawn(
        spec(),
      );
      expect(s.command).toBe('container');
      expect(pairAfter(s.args, '--user')).toEqual(['1000:1000']);
      expect(pairAfter(s.args, '--memory')).toEqual(['512M']);
      expect(pairAfter(s.args, '--mount')).toContain(
        `type=bind,source=${path.join(w.groupsDir, 'global')},target=/workspace/global,readonly`,
      );
      expect(s.args).toContain('--no-dns');
      expect(s.args.slice(-3)).toEqual(['nanoclaw-agent:latest', 'node', '/opt/nanoclaw/runner.mjs']);
    });
  });

  describe('none', () => {
    it('refuses every group but main', () => {
      const b = new NoneBackend({ homesDir: path.join(w.root, 'homes') });
      expect(() => b.buildSpawn(spec('family'))).toThrow(/only the main group/);
    });

    it('runs main with host paths and a HOME whose .claude is the session dir', () => {
      const b = new NoneBackend({ homesDir: path.join(w.root, 'homes'), nodePath: '/usr/bin/node' });
      const s = b.buildSpawn(spec('main', true));
      expect(s.command).toBe('/usr/bin/node');
      expect(s.args).toEqual([path.join(w.root, 'runner.mjs')]);
      expect(s.paths.groupDir).toBe(path.join(w.groupsDir, 'main'));
      expect(s.cwd).toBe(s.paths.groupDir);
      expect(fs.realpathSync(path.join(s.paths.homeDir, '.claude'))).toBe(
        fs.realpathSync(path.join(w.sessionsDir, 'main')),
      );
      expect(s.env.HOME).toBe(s.paths.homeDir);
      expect(Object.keys(s.env)).not.toContain('USER');
    });
  });

  describe('bwrap', () => {
    const b = () =>
      new BwrapBackend({ runsDir: w.runsDir, etcDir: w.etcDir, nodePath: '/usr/bin/node', cgroups: 'off' });

    it('builds an allow-only sandbox with a minimal bwrap environment', () => {
      const s = b().buildSpawn(spec());
      expect(s.command).toBe('/bin/bash');
      expect(s.env).toEqual({ PATH: '/usr/bin:/bin' });
      const { visibleArgv, options: a, seccomp } = unwrapSpawn(s);
      for (const f of [
        '--unshare-all',
        '--unshare-user',
        '--disable-userns',
        '--new-session',
        '--die-with-parent',
        '--clearenv',
      ]) {
        expect(a).toContain(f);
      }
      expect(pairAfter(a, '--cap-drop')).toEqual(['ALL']);
      expect(pairAfter(a, '--uid')).toEqual(['1000']);
      expect(pairAfter(a, '--chdir')).toEqual(['/workspace/group']);
      expect(pairAfter(a, '--seccomp')).toEqual(['4']);
      expect(seccomp.length % 8).toBe(0);
      expect(seccomp.length).toBeGreaterThan(8 * 40);
      expect(a.join(' ')).not.toMatch(/--ro-bind \/ \/|--bind \/ \//);
      expect(a.join(' ')).not.toContain('resolv.conf');
      expect(pairAfter(a, '--ro-bind')).toContain(path.join(w.groupsDir, 'global'));
      // /tmp, HOME and /dev/shm are sized tmpfs.
      expect(pairAfter(a, '--tmpfs')).toEqual(['/dev/shm', '/tmp', '/home/agent']);
      expect(pairAfter(a, '--size')).toHaveLength(3);
      // Host paths and the environment stay off bwrap's visible argv (/proc/1/cmdline inside).
      expect(visibleArgv.join(' ')).not.toContain(w.root);
      expect(visibleArgv.join(' ')).not.toContain(PLACEHOLDER);
      expect(visibleArgv.slice(visibleArgv.lastIndexOf('--') + 1)).toEqual([
        '/usr/bin/node',
        '/opt/nanoclaw/runner.mjs',
      ]);
      expect(visibleArgv).toContain('--nproc=128');
      expect(visibleArgv).toContain(`--fsize=${64 * 1024 * 1024}`);
      expect(visibleArgv).toContain(`--data=${512 * 1024 * 1024}`);
      expect(visibleArgv).toContain('--nofile=1024');
      expect(fs.readFileSync(path.join(w.etcDir, 'passwd'), 'utf8')).toMatch(/^agent:x:1000:1000:/);
      expect(runIdFromArgv(visibleArgv, w.runsDir)).toBe('run1');
    });

    it("binds the claude-code engine's bundle read-only beside the runner when the build made one", () => {
      const bindPairs = (a: string[]): string[] =>
        a.flatMap((x, i) => (x === '--ro-bind' ? [`${a[i + 1]} -> ${a[i + 2]}`] : []));
      const engine = path.join(w.root, 'runner-claude.mjs');
      expect(bindPairs(unwrapSpawn(b().buildSpawn(spec())).options).join('\n')).not.toContain(
        'runner-claude',
      );
      fs.writeFileSync(engine, 'export {};\n', { mode: 0o644 });
      expect(bindPairs(unwrapSpawn(b().buildSpawn(spec())).options)).toContain(
        `${engine} -> /opt/nanoclaw/runner-claude.mjs`,
      );
    });

    it('takes the sandbox open-files limit from the spec', () => {
      const s = b().buildSpawn({ ...spec(), limits: { ...spec().limits, openFiles: 77 } });
      expect(unwrapSpawn(s).visibleArgv).toContain('--nofile=77');
    });

    it('refuses a socket dir outside the runs dir and a table without the group dir', () => {
      expect(() => b().buildSpawn({ ...spec(), socketDir: '/tmp' })).toThrow(/runs dir/);
      expect(() => b().buildSpawn({ ...spec(), mounts: [] })).toThrow(/mount table/);
    });
  });

  it('orphan detection only matches bwrap binding a run dir at /run/nanoclaw', () => {
    const runs = '/srv/nc/data/runs';
    expect(runIdFromArgv(['/usr/bin/bwrap', '--ro-bind', `${runs}/r1`, '/run/nanoclaw'], runs)).toBe('r1');
    expect(runIdFromArgv(['/usr/bin/sleep', '--ro-bind', `${runs}/r1`, '/run/nanoclaw'], runs)).toBeNull();
    expect(runIdFromArgv(['bwrap', '--ro-bind', `${runs}/r1/x`, '/run/nanoclaw'], runs)).toBeNull();
    expect(runIdFromArgv(['bwrap', '--ro-bind', `/other/r1`, '/run/nanoclaw'], runs)).toBeNull();
    expect(runIdFromArgv(['bwrap', '--', 'x', '--ro-bind', `${runs}/r1`, '/run/nanoclaw'], runs)).toBeNull();
  });

  it('orphan detection matches bwrap naming a run whose dir exists under the runs dir', () => {
    fs.mkdirSync(path.join(w.runsDir, 'r2'));
    const named = (id: string, argv0 = '/usr/bin/bwrap') => [
      argv0,
      '--args',
      '3',
      '--setenv',
      'NANOCLAW_RUN_ID',
      id,
      '--',
      'x',
    ];
    expect(runIdFromArgv(named('r2'), w.runsDir)).toBe('r2');
    expect(runIdFromArgv(named('r3'), w.runsDir)).toBeNull();
    expect(runIdFromArgv(named('..'), w.runsDir)).toBeNull();
    expect(runIdFromArgv(named('r2', '/usr/bin/sleep'), w.runsDir)).toBeNull();
    expect(runIdFromArgv(['bwrap', '--', '--setenv', 'NANOCLAW_RUN_ID', 'r2'], w.runsDir)).toBeNull();
  });

  it('container/Dockerfile ships the prebuilt runner, installs only runtime deps and runs as non-root', () => {
    const df = fs.readFileSync(path.resolve('container/Dockerfile'), 'utf8');
    const lines = df.split('\n').filter((l) => !l.trim().startsWith('#'));
    const text = lines.join('\n');
    expect(text).toMatch(/^COPY dist\/runner\.mjs \/opt\/nanoclaw\/runner\.mjs$/m);
    expect(text).toMatch(/^COPY dist\/runner-claude\.mjs \/opt\/nanoclaw\/runner-claude\.mjs$/m);
    expect(text).toMatch(/npm install --omit=dev/);
    expect(text).not.toMatch(/\b(tsc|esbuild|npm run build|npm ci)\b/);
    expect(text).not.toMatch(/COPY (src|\.)\b/);
    const user = lines.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toBe('USER 1000:1000');
    expect(text).toMatch(/CMD \["node", "\/opt\/nanoclaw\/runner\.mjs"\]/);
    const ignore = fs.readFileSync(path.resolve('container/Dockerfile.dockerignore'), 'utf8');
    expect(ignore.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      '*',
      '!dist/runner.mjs',
      '!dist/runner-claude.mjs',
    ]);
  });
});

describe('bwrap reachability check', () => {
  it('says bubblewrap is not installed, with the install command, when bwrap is missing', async () => {
    const w = makeSandboxWorld('nc-missing-');
    try {
      const b = new BwrapBackend({
        runsDir: w.runsDir,
        etcDir: w.etcDir,
        cgroups: 'off',
        bwrapPath: path.join(w.root, 'no-such-bwrap'),
      });
      expect(await b.available()).toEqual({
        ok: false,
        missing: true,
        detail: expect.stringMatching(/^bubblewrap is not installed .*`apt-get install bubblewrap`/),
      });
    } finally {
      w.cleanup();
    }
  });

  it('refuses bind sources the sandbox uid cannot reach', () => {
    if (process.getuid?.() !== 0) return;
    const w = makeSandboxWorld('nc-reach-');
    try {
      const group = makeGroup('family');
      const socketDir = path.join(w.runsDir, 'run1');
      fs.mkdirSync(socketDir);
      const hidden = path.join(w.root, 'private');
      fs.mkdirSync(path.join(hidden, 'app'), { recursive: true, mode: 0o700 });
      fs.chmodSync(hidden, 0o700);
      const b = new BwrapBackend({ runsDir: w.runsDir, etcDir: w.etcDir, cgroups: 'off' });
      expect(() =>
        b.buildSpawn({
          runId: 'run1',
          group,
          mounts: buildMountTable({
            group,
            groupsDir: w.groupsDir,
            sessionsDir: w.sessionsDir,
            extraMounts: [],
          }),
          socketDir,
          runnerEntry: path.join(hidden, 'app', 'runner.mjs'),
          runnerNodeModules: path.join(w.root, 'node_modules'),
          env: {},
          limits: { memoryMb: 256, pids: 64, fileSizeMb: 8 },
        }),
      ).toThrow(/cannot enter .*private .*Fix: run `chmod o\+x .*private`/);
    } finally {
      w.cleanup();
    }
  });
});
