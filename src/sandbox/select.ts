// Chooses the sandbox backend once at start-up. `auto` tries bwrap on Linux,
// then docker, then apple on macOS, and never falls back to `none`: running
// without a sandbox is only ever the owner's explicit choice, for main only.

import path from 'node:path';

import { AppleBackend } from './apple.js';
import { BwrapBackend, type BwrapOptions } from './bwrap.js';
import { DockerBackend } from './docker.js';
import { NoneBackend } from './none.js';
import type { Availability, BackendName, SandboxBackend } from './types.js';

export type BackendRequest = 'auto' | BackendName;

export interface SelectOptions {
  requested: BackendRequest;
  platform: NodeJS.Platform;
  allowUnsandboxedMain: boolean;
  allowUnenforcedEgress: boolean;
  dockerBinary?: string;
  /** Needed to construct bwrap (runs dir, synthetic /etc dir). */
  bwrap: Pick<BwrapOptions, 'runsDir' | 'etcDir'> & Partial<BwrapOptions>;
  /** HOME dirs for the `none` backend. */
  noneHomesDir: string;
  /** Tests replace construction to probe without real engines. */
  create?: (name: BackendName) => SandboxBackend;
}

export type SelectResult = { backend: SandboxBackend; reason: string } | { backend: null; reason: string };

function defaultCreate(opts: SelectOptions): (name: BackendName) => SandboxBackend {
  return (name) => {
    switch (name) {
      case 'bwrap':
        return new BwrapBackend(opts.bwrap);
      case 'docker':
        return new DockerBackend({
          binary: opts.dockerBinary,
          seccompProfilePath: path.join(opts.bwrap.etcDir, 'docker-seccomp.json'),
          runsDir: opts.bwrap.runsDir,
        });
      case 'apple':
        return new AppleBackend({
          allowUnenforcedEgress: opts.allowUnenforcedEgress,
          runsDir: opts.bwrap.runsDir,
        });
      case 'none':
        return new NoneBackend({ homesDir: opts.noneHomesDir });
    }
  };
}

/** Picks the backend; `reason` is the one line `nanoclaw doctor` prints. */
export async function selectBackend(opts: SelectOptions): Promise<SelectResult> {
  const create = opts.create ?? defaultCreate(opts);
  if (opts.requested === 'none') {
    if (!opts.allowUnsandboxedMain) {
      return {
        backend: null,
        reason:
          'sandbox "none" was requested but allowUnsandboxedMain is not true; set it to run main unsandboxed',
      };
    }
    return { backend: create('none'), reason: 'sandbox "none" (explicit opt-in): main only, no isolation' };
  }
  if (opts.requested !== 'auto') {
    const b = create(opts.requested);
    const a = await b.available();
    return a.ok
      ? { backend: b, reason: `sandbox "${b.name}" (configured): ${a.detail}` }
      : { backend: null, reason: `sandbox "${opts.requested}" (configured) is not available: ${a.detail}` };
  }
  const order: BackendName[] = [];
  if (opts.platform === 'linux') order.push('bwrap');
  order.push('docker');
  if (opts.platform === 'darwin') order.push('apple');
  const tried: string[] = [];
  // An engine that is installed but cannot start is what the owner meant to use: its
  // cause is the refusal, not a generic "install bubblewrap or docker" nor the other
  // engines' failures (a docker daemon that is not running says nothing about bwrap).
  let installedFailure: { name: BackendName; detail: string } | null = null;
  for (const name of order) {
    const b = create(name);
    let a: Availability;
    try {
      a = await b.available();
    } catch (err) {
      a = { ok: false, detail: (err as Error).message };
    }
    if (a.ok) {
      const skipped = tried.length > 0 ? ` (skipped: ${tried.join('; ')})` : '';
      return { backend: b, reason: `sandbox "${name}" (auto): ${a.detail}${skipped}` };
    }
    if (!a.missing) installedFailure ??= { name, detail: a.detail };
    tried.push(`${name}: ${a.detail}`);
  }
  if (installedFailure) {
    return {
      backend: null,
      reason: `sandbox "${installedFailure.name}" cannot start: ${installedFailure.detail}`,
    };
  }
  return {
    backend: null,
    reason: `no sandbox available (${tried.join('; ')}); install bubblewrap (\`apt-get install bubblewrap\`) or docker, or set sandbox "none" with allowUnsandboxedMain for main only`,
  };
}

/** Printed at every start when the backend gives no isolation; null otherwise. */
export function sandboxWarning(backend: SandboxBackend | BackendName): string | null {
  const name = typeof backend === 'string' ? backend : backend.name;
  if (name === 'none') {
    return 'WARNING: sandbox "none" — the main agent runs WITHOUT isolation and can read and change everything your user can. Other groups will not run.';
  }
  if (name === 'apple') {
    return 'WARNING: sandbox "apple" cannot enforce the egress allowlist; agents may reach any host.';
  }
  return null;
}
