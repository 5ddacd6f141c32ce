import fs from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AUDIT_REASONS } from '../../../src/core/audit.js';
import type { AdditionalMount } from '../../../src/core/types.js';
import { BwrapBackend, unwrapSpawn } from '../../../src/sandbox/bwrap.js';
import { DockerBackend } from '../../../src/sandbox/docker.js';
import {
  MountAllowlistError,
  assertMountsUnchanged,
  checkAdditionalMounts,
  findBlockedComponent,
  loadMountAllowlist,
  type MountAllowlist,
} from '../../../src/sandbox/mount-policy.js';
import { buildMountTable } from '../../../src/sandbox/mounts.js';
import type { MountSpec, SandboxRunSpec } from '../../../src/sandbox/types.js';
import {
  makeGroup,
  makeSandboxWorld,
  memoryAudit,
  type SandboxWorld,
} from '../../support/sandbox-fixtures.js';

describe('mount policy', () => {
  let w: SandboxWorld;
  let projects: string;
  let shared: string;
  const main = makeGroup('main', { isMain: true });
  const fam = makeGroup('family');

  beforeEach(() => {
    w = makeSandboxWorld('nc-policy-');
    projects = path.join(w.homeDir, 'projects');
    shared = path.join(w.homeDir, 'shared');
    fs.mkdirSync(path.join(projects, 'webapp', 'src'), { recursive: true });
    fs.mkdirSync(path.join(shared, 'docs'), { recursive: true });
    fs.mkdirSync(path.join(w.homeDir, '.ssh'), { recursive: true });
    fs.writeFileSync(path.join(w.homeDir, '.ssh', 'id_ed25519'), 'KEY');
    fs.mkdirSync(path.join(projects, 'webapp', '.aws'), { recursive: true });
  });
  afterEach(() => w.cleanup());

  const allow = (over: Partial<MountAllowlist> = {}): MountAllowlist => ({
    allowedRoots: [
      { path: '~/projects', allowReadWrite: false },
      { path: '~/shared', allowReadWrite: true },
    ],
    nonMainReadOnly: true,
    ...over,
  });

  function check(requested: AdditionalMount[], group = main, allowlist: MountAllowlist | null = allow()) {
    const audit = memoryAudit();
    const result = checkAdditionalMounts({
      group,
      requested,
      allowlist,
      homeDir: w.homeDir,
      audit,
      runId: 'r1',
    });
    return { result, audit };
  }

  function expectRefused(requested: AdditionalMount[], reason: string, group = main, list = allow()) {
    const { result, audit } = check(requested, group, list);
    expect(result.ok).toBe(false);
    if (result.ok) return '';
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toEqual({
      group: group.folder,
      runId: 'r1',
      action: 'mount',
      target: requested[requested.length - 1].hostPath,
      reason,
    });
    expect(AUDIT_REASONS).toContain(audit.records[0].reason);
    // The message names the field and shows an example.
    expect(result.message).toMatch(/additionalMounts\[\d+\]/);
    expect(result.message).toMatch(/e\.g\.|such as/);
    return result.message;
  }

  it('allows a path under an allowed root, resolved, at /workspace/extra/<name>, read-only by default', () => {
    const { result, audit } = check([{ hostPath: '~/projects/webapp' }]);
    expect(result).toEqual({
      ok: true,
      mounts: [
        {
          hostPath: fs.realpathSync(path.join(projects, 'webapp')),
          sandboxPath: '/workspace/extra/webapp',
          readonly: true,
        },
      ],
    });
    expect(audit.records).toEqual([]);
  });

  it('needs no allowlist when nothing is requested', () => {
    expect(check([], fam, null).result).toEqual({ ok: true, mounts: [] });
  });

  it('refuses every additional mount without an allowlist file', () => {
    const msg = expectRefused([{ hostPath: '~/projects/webapp' }], 'no_allowlist', main, null as never);
    expect(msg).toContain('mount-allowlist.json');
  });

  it('refuses paths outside every allowed root', () => {
    const msg = expectRefused([{ hostPath: w.root }], 'outside_allowed_roots');
    expect(msg).toContain('~/projects');
  });

  it('refuses relative host paths', () => {
    expectRefused([{ hostPath: 'projects/webapp' }], 'outside_allowed_roots');
  });

  it('refuses blocked patterns as path components even under an allowed root', () => {
    expectRefused([{ hostPath: '~/projects/webapp/.aws' }], 'blocked_pattern');
  });

  it('refuses a symlink under an allowed root that leads into ~/.ssh', () => {
    fs.symlinkSync(path.join(w.homeDir, '.ssh'), path.join(projects, 'innocent'));
    const msg = expectRefused([{ hostPath: '~/projects/innocent' }], 'blocked_pattern');
    expect(msg).toContain('.ssh');
  });

  it('refuses a symlinked parent component leading outside the roots', () => {
    fs.symlinkSync(w.root, path.join(projects, 'up'));
    fs.mkdirSync(path.join(w.root, 'elsewhere'));
    expectRefused([{ hostPath: '~/projects/up/elsewhere' }], 'outside_allowed_roots');
  });

  it('refuses .. traversal out of an allowed root', () => {
    expectRefused([{ hostPath: '~/projects/../.ssh' }], 'blocked_pattern');
    fs.mkdirSync(path.join(w.homeDir, 'private'));
    expectRefused([{ hostPath: '~/projects/webapp/../../private' }], 'outside_allowed_roots');
  });

  it('refuses missing host paths', () => {
    expectRefused([{ hostPath: '~/projects/nope' }], 'path_missing');
  });

  it('applies extra blocked patterns from the allowlist', () => {
    expectRefused(
      [{ hostPath: '~/projects/webapp/src' }],
      'blocked_pattern',
      main,
      allow({ blockedPatterns: ['src'] }),
    );
  });

  it.each([['/etc'], ['../escape'], ['a/../../b'], ['..'], ['']])('refuses container path %j', (cp) => {
    expectRefused([{ hostPath: '~/projects/webapp', containerPath: cp }], 'invalid_container_path');
  });

  it('accepts a nested relative container path and refuses duplicates', () => {
    const ok = check([{ hostPath: '~/projects/webapp', containerPath: 'code/web' }]);
    expect(ok.result.ok && ok.result.mounts[0].sandboxPath).toBe('/workspace/extra/code/web');
    expectRefused(
      [
        { hostPath: '~/projects/webapp', containerPath: 'x' },
        { hostPath: '~/shared/docs', containerPath: 'x' },
      ],
      'invalid_container_path',
    );
  });

  it('gives read-write only when both the request and the root allow it', () => {
    const rw = check([{ hostPath: '~/shared/docs', readonly: false }]);
    expect(rw.result.ok && rw.result.mounts[0].readonly).toBe(false);
    const ro = check([{ hostPath: '~/shared/docs' }]);
    expect(ro.result.ok && ro.result.mounts[0].readonly).toBe(true);
    expectRefused([{ hostPath: '~/projects/webapp', readonly: false }], 'readonly_root');
  });

  it('forces non-main groups read-only when nonMainReadOnly, but not when it is off', () => {
    const forced = check([{ hostPath: '~/shared/docs', readonly: false }], fam);
    expect(forced.result.ok && forced.result.mounts[0].readonly).toBe(true);
    const free = check(
      [{ hostPath: '~/shared/docs', readonly: false }],
      fam,
      allow({ nonMainReadOnly: false }),
    );
    expect(free.result.ok && free.result.mounts[0].readonly).toBe(false);
  });

  it('refuses the whole request when one mount of several is bad', () => {
    const { result, audit } = check([{ hostPath: '~/projects/webapp' }, { hostPath: '~/.ssh' }]);
    expect(result.ok).toBe(false);
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0].target).toBe('~/.ssh');
  });

  it('matches blocked patterns anywhere inside a component, case-insensitively', () => {
    expect(findBlockedComponent('/a/.env.local/x', ['.env'])).toBe('.env');
    expect(findBlockedComponent('/a/id_rsa.pub', ['id_rsa'])).toBe('id_rsa');
    expect(findBlockedComponent('/a/my.SSH.notes', ['.ssh'])).toBe('.ssh');
    expect(findBlockedComponent('/a/environment', ['.env'])).toBeNull();
    expect(findBlockedComponent('/a/b/c', ['.env', 'id_rsa'])).toBeNull();
    // Two-component patterns match consecutive components only.
    expect(findBlockedComponent('/home/u/.config/gh', ['.config/gh'])).toBe('.config/gh');
    expect(findBlockedComponent('/home/u/.config/gh/hosts.yml', ['.config/gh'])).toBe('.config/gh');
    expect(findBlockedComponent('/home/u/.config/other/gh', ['.config/gh'])).toBeNull();
    expect(findBlockedComponent('/home/u/gh', ['.config/gh'])).toBeNull();
  });

  // Names the review mounted under an allowed root: each holds or is a secret.
  for (const name of [
    'prod.env',
    'aws-credentials',
    'backup_id_rsa',
    'team.secret',
    '.envrc',
    'keys.gpg',
    'server.pem',
    'tls.key',
    'cert.p12',
    'vault.kdbx',
    'id_ecdsa',
    '.git-credentials',
  ]) {
    it(`refuses ${name} under an allowed root, as a file or a directory`, () => {
      fs.writeFileSync(path.join(projects, name), 'secret');
      expectRefused([{ hostPath: `~/projects/${name}` }], 'blocked_pattern');
      fs.mkdirSync(path.join(projects, 'webapp', `${name}.d`));
      expectRefused([{ hostPath: `~/projects/webapp/${name}.d` }], 'blocked_pattern');
    });
  }

  it('refuses ~/.config/gh even when ~ itself is an allowed root', () => {
    fs.mkdirSync(path.join(w.homeDir, '.config', 'gh'), { recursive: true });
    const list = allow({ allowedRoots: [{ path: '~', allowReadWrite: false }] });
    expectRefused([{ hostPath: '~/.config/gh' }], 'blocked_pattern', main, list);
    // A symlink under a root that leads there is refused as well.
    fs.symlinkSync(path.join(w.homeDir, '.config', 'gh'), path.join(projects, 'tools'));
    expectRefused([{ hostPath: '~/projects/tools' }], 'blocked_pattern');
  });

  describe('re-check right before the sandbox is built (TOCTOU)', () => {
    function checked(): MountSpec[] {
      const { result } = check([{ hostPath: '~/projects/webapp' }]);
      if (!result.ok) throw new Error(result.message);
      return result.mounts;
    }

    it('passes when nothing changed', () => {
      expect(() => assertMountsUnchanged(checked())).not.toThrow();
    });

    it('refuses a checked directory swapped for a symlink to ~/.ssh', () => {
      const mounts = checked();
      fs.renameSync(path.join(projects, 'webapp'), path.join(projects, 'webapp-old'));
      fs.symlinkSync(path.join(w.homeDir, '.ssh'), path.join(projects, 'webapp'));
      expect(() => assertMountsUnchanged(mounts)).toThrow(/changed after the mount policy checked it.*\.ssh/);
    });

    it('refuses a swapped parent component and a vanished source', () => {
      const mounts = checked();
      fs.renameSync(projects, path.join(w.homeDir, 'projects-old'));
      fs.symlinkSync(path.join(w.homeDir, 'shared'), projects);
      fs.mkdirSync(path.join(w.homeDir, 'shared', 'webapp'));
      expect(() => assertMountsUnchanged(mounts)).toThrow(/changed after/);
      fs.rmSync(path.join(w.homeDir, 'shared', 'webapp'), { recursive: true });
      expect(() => assertMountsUnchanged(mounts)).toThrow(/disappeared/);
    });

    it('is what both container backends run before building argv', () => {
      const group = main;
      const mounts = [
        ...buildMountTable({ group, groupsDir: w.groupsDir, sessionsDir: w.sessionsDir, extraMounts: [] }),
        ...checked(),
      ];
      const socketDir = path.join(w.runsDir, 'run1');
      fs.mkdirSync(socketDir);
      const spec: SandboxRunSpec = {
        runId: 'run1',
        group,
        mounts,
        socketDir,
        runnerEntry: path.join(w.root, 'runner.mjs'),
        runnerNodeModules: path.join(w.root, 'node_modules'),
        env: {},
        limits: { memoryMb: 256, pids: 64, fileSizeMb: 8 },
      };
      const bwrap = new BwrapBackend({ runsDir: w.runsDir, etcDir: w.etcDir, cgroups: 'off' });
      const docker = new DockerBackend({
        seccompProfilePath: path.join(w.root, 'p.json'),
        runsDir: w.runsDir,
      });
      // bwrap binds the additional mount by an fd the wrapper opens and checks (never by path).
      const { options, bindSources } = unwrapSpawn(bwrap.buildSpawn(spec));
      expect(bindSources).toEqual([fs.realpathSync(path.join(projects, 'webapp'))]);
      const at = options.indexOf('--ro-bind-fd');
      expect(options.slice(at, at + 3)).toEqual(['--ro-bind-fd', '5', '/workspace/extra/webapp']);
      expect(options).not.toContain(bindSources[0]);
      fs.renameSync(path.join(projects, 'webapp'), path.join(projects, 'webapp-old'));
      fs.symlinkSync(path.join(w.homeDir, '.ssh'), path.join(projects, 'webapp'));
      expect(() => bwrap.buildSpawn(spec)).toThrow(/changed after/);
      expect(() => docker.buildSpawn(spec)).toThrow(/changed after/);
    });
  });

  describe('loadMountAllowlist', () => {
    const file = () => path.join(w.configDir, 'mount-allowlist.json');

    it('returns null when the file is missing', () => {
      expect(loadMountAllowlist(w.configDir)).toBeNull();
    });

    it('reads a valid file with defaults', () => {
      fs.writeFileSync(file(), JSON.stringify({ allowedRoots: [{ path: '~/projects' }] }));
      expect(loadMountAllowlist(w.configDir)).toEqual({
        allowedRoots: [{ path: '~/projects', allowReadWrite: false }],
        nonMainReadOnly: true,
      });
    });

    it('names the file and line for broken JSON', () => {
      fs.writeFileSync(file(), '{\n  "allowedRoots": [\n  ,]\n}');
      expect(() => loadMountAllowlist(w.configDir)).toThrow(MountAllowlistError);
      expect(() => loadMountAllowlist(w.configDir)).toThrow(
        /mount-allowlist\.json: is not valid JSON at line 3/,
      );
    });

    it('names the file and the field for a schema error', () => {
      fs.writeFileSync(file(), JSON.stringify({ allowedRoots: [{ path: 'relative/dir' }] }));
      expect(() => loadMountAllowlist(w.configDir)).toThrow(
        /mount-allowlist\.json: field allowedRoots\.0\.path/,
      );
      fs.writeFileSync(file(), JSON.stringify({ allowedRoots: [], extra: 1 }));
      expect(() => loadMountAllowlist(w.configDir)).toThrow(/mount-allowlist\.json/);
    });
  });
});
