import fs from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { SANDBOX_PATHS, assertRunId, buildMountTable } from '../../../src/sandbox/mounts.js';
import { makeGroup, makeSandboxWorld, type SandboxWorld } from '../../support/sandbox-fixtures.js';

describe('buildMountTable', () => {
  let w: SandboxWorld;
  beforeEach(() => (w = makeSandboxWorld('nc-mounts-')));
  afterEach(() => w.cleanup());

  const table = (folder: string, isMain: boolean) =>
    buildMountTable({
      group: makeGroup(folder, { isMain }),
      groupsDir: w.groupsDir,
      sessionsDir: w.sessionsDir,
      extraMounts: [],
    });

  it('gives a non-main group its folder rw, global ro, its session rw and nothing else', () => {
    const m = table('family', false);
    expect(m).toEqual([
      { hostPath: path.join(w.groupsDir, 'family'), sandboxPath: SANDBOX_PATHS.group, readonly: false },
      { hostPath: path.join(w.groupsDir, 'global'), sandboxPath: SANDBOX_PATHS.global, readonly: true },
      { hostPath: path.join(w.sessionsDir, 'family'), sandboxPath: SANDBOX_PATHS.claudeDir, readonly: false },
    ]);
    expect(m.some((x) => x.sandboxPath === SANDBOX_PATHS.groups)).toBe(false);
    for (const x of m) expect(fs.statSync(x.hostPath).isDirectory()).toBe(true);
  });

  it('gives main the groups parent read-only (first, so children mount over it) and global rw', () => {
    const m = table('main', true);
    expect(m[0]).toEqual({ hostPath: w.groupsDir, sandboxPath: SANDBOX_PATHS.groups, readonly: true });
    expect(m.find((x) => x.sandboxPath === SANDBOX_PATHS.global)?.readonly).toBe(false);
    expect(m.find((x) => x.sandboxPath === SANDBOX_PATHS.group)?.readonly).toBe(false);
  });

  it('hands created dirs to uid 1000 when root', () => {
    table('family', false);
    if (process.getuid?.() !== 0) return;
    expect(fs.statSync(path.join(w.groupsDir, 'family')).uid).toBe(1000);
    expect(fs.statSync(path.join(w.sessionsDir, 'family')).uid).toBe(1000);
    expect(fs.statSync(w.groupsDir).uid).toBe(0);
  });

  it('refuses invalid and reserved folders', () => {
    for (const f of ['../x', 'Global', 'a/b', '', 'global', '-x'])
      expect(() => table(f, false)).toThrow(/folder/);
  });

  it('keeps extra mounts under /workspace/extra', () => {
    const group = makeGroup('family');
    const base = { group, groupsDir: w.groupsDir, sessionsDir: w.sessionsDir };
    const ok = buildMountTable({
      ...base,
      extraMounts: [{ hostPath: '/x', sandboxPath: '/workspace/extra/x', readonly: true }],
    });
    expect(ok.at(-1)?.sandboxPath).toBe('/workspace/extra/x');
    expect(() =>
      buildMountTable({
        ...base,
        extraMounts: [{ hostPath: '/x', sandboxPath: '/workspace/group', readonly: false }],
      }),
    ).toThrow(/extra/);
  });

  it('validates run ids', () => {
    expect(() => assertRunId('r-1_a.b')).not.toThrow();
    for (const id of ['../x', 'a/b', '', '-x', 'a..b', 'a b'])
      expect(() => assertRunId(id)).toThrow(/run id/);
  });
});
