import fs from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AUDIT_REASONS } from '../../../src/core/audit.js';
import type { AdditionalMount } from '../../../src/core/types.js';
import {
  MountAllowlistError,
  checkAdditionalMounts,
  findBlockedComponent,
  loadMountAllowlist,
  type MountAllowlist,
} from '../../../src/sandbox/mount-policy.js';
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

  it('matches blocked patterns as components and their dotted variants only', () => {
    expect(findBlockedComponent('/a/.env.local/x', ['.env'])).toBe('.env');
    expect(findBlockedComponent('/a/id_rsa.pub', ['id_rsa'])).toBe('id_rsa');
    expect(findBlockedComponent('/a/environment', ['.env'])).toBeNull();
    expect(findBlockedComponent('/a/my.ssh.notes', ['.ssh'])).toBeNull();
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
