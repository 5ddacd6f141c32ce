import { describe, expect, it } from 'vitest';

import { sandboxWarning, selectBackend, type SelectOptions } from '../../../src/sandbox/select.js';
import type { BackendName, SandboxBackend } from '../../../src/sandbox/types.js';

function fake(name: BackendName, ok: boolean, detail = `${name} detail`, missing = false): SandboxBackend {
  return {
    name,
    available: async () => ({ ok, detail, ...(missing ? { missing } : {}) }),
    buildSpawn: () => {
      throw new Error('not used');
    },
    cleanupOrphans: async () => 0,
  };
}

function opts(avail: Partial<Record<BackendName, boolean>>, over: Partial<SelectOptions> = {}) {
  const created: BackendName[] = [];
  const o: SelectOptions = {
    requested: 'auto',
    platform: 'linux',
    allowUnsandboxedMain: false,
    allowUnenforcedEgress: false,
    bwrap: { runsDir: '/x', etcDir: '/y' },
    noneHomesDir: '/z',
    create: (n) => {
      created.push(n);
      return fake(n, avail[n] ?? false);
    },
    ...over,
  };
  return { o, created };
}

describe('selectBackend', () => {
  it('auto picks bwrap on Linux when it works', async () => {
    const { o } = opts({ bwrap: true, docker: true });
    const r = await selectBackend(o);
    expect(r.backend?.name).toBe('bwrap');
    expect(r.reason).toBe('sandbox "bwrap" (auto): bwrap detail');
  });

  it('auto falls back to docker and says why bwrap was skipped', async () => {
    const r = await selectBackend(opts({ bwrap: false, docker: true }).o);
    expect(r.backend?.name).toBe('docker');
    expect(r.reason).toContain('skipped: bwrap: bwrap detail');
  });

  it('auto tries docker then apple on macOS, never bwrap', async () => {
    const { o, created } = opts({ bwrap: true, apple: true }, { platform: 'darwin' });
    const r = await selectBackend(o);
    expect(r.backend?.name).toBe('apple');
    expect(created).toEqual(['docker', 'apple']);
  });

  it('auto never falls back to none', async () => {
    const { o, created } = opts({ none: true }, { allowUnsandboxedMain: true });
    const r = await selectBackend(o);
    expect(r.backend).toBeNull();
    expect(created).not.toContain('none');
    expect(r.reason).toBe('sandbox "bwrap" cannot start: bwrap detail');
  });

  it('auto names the cause of an installed engine that fails, not the absent ones', async () => {
    const o: SelectOptions = {
      ...opts({}).o,
      create: (n) =>
        n === 'bwrap'
          ? fake(n, false, 'bubblewrap is not installed', true)
          : fake(n, false, 'docker engine not reachable (daemon not running)'),
    };
    expect((await selectBackend(o)).reason).toBe(
      'sandbox "docker" cannot start: docker engine not reachable (daemon not running)',
    );
  });

  it('auto says to install an engine when none is installed', async () => {
    const o: SelectOptions = { ...opts({}).o, create: (n) => fake(n, false, `${n} not installed`, true) };
    const r = await selectBackend(o);
    expect(r.backend).toBeNull();
    expect(r.reason).toMatch(
      /^no sandbox available \(bwrap: bwrap not installed; docker: docker not installed\)/,
    );
    expect(r.reason).toContain('`apt-get install bubblewrap`');
  });

  it('none needs the explicit opt-in', async () => {
    expect((await selectBackend(opts({}, { requested: 'none' }).o)).backend).toBeNull();
    const r = await selectBackend(opts({}, { requested: 'none', allowUnsandboxedMain: true }).o);
    expect(r.backend?.name).toBe('none');
  });

  it('a configured backend that is unavailable is an error, not a fallback', async () => {
    const r = await selectBackend(opts({ bwrap: true }, { requested: 'docker' }).o);
    expect(r.backend).toBeNull();
    expect(r.reason).toContain('sandbox "docker" (configured) is not available');
  });

  it('warns for none and apple only', () => {
    expect(sandboxWarning('none')).toMatch(/WITHOUT isolation/);
    expect(sandboxWarning('apple')).toMatch(/egress/);
    expect(sandboxWarning('bwrap')).toBeNull();
  });
});
