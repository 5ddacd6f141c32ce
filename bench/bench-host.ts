// The real host as the run benchmarks drive it: the real store, router, queue,
// broker and ProcessRuns with bwrap, a fake channel in place of WhatsApp, and
// an API key for the fake model. Small on purpose: the board child measures
// the memory of a process that imports it.

import path from 'node:path';
import { findPackageRoot, runnerPaths } from '../src/cli/package-root.js';
import type { Config } from '../src/config/config.js';
import { silentLogger } from '../src/core/logger.js';
import { createHost, type Host } from '../src/host.js';
import { ProcessRuns } from '../src/runs/process-runs.js';
import { BwrapBackend } from '../src/sandbox/bwrap.js';
import { FakeChannel } from '../test/support/fake-channel.js';

export interface BenchHost {
  host: Host;
  channel: FakeChannel;
  backend: BwrapBackend;
}

/** `label` names the bench in the sandbox selection reason. */
export function buildBenchHost(config: Config, userHome: string, label: string): BenchHost {
  const backend = new BwrapBackend({
    runsDir: config.paths.runsDir,
    etcDir: path.join(config.paths.dataDir, 'sandbox-etc'),
  });
  let channel: FakeChannel | null = null;
  const host = createHost({
    config,
    logger: silentLogger(),
    makeChannels: (events) => {
      channel = new FakeChannel(events);
      return [channel];
    },
    makeRuns: ({ store, tools }) =>
      new ProcessRuns({
        config,
        logger: silentLogger(),
        store,
        tools,
        sandbox: Promise.resolve({ backend, reason: `bwrap (${label})` }),
        credential: { kind: 'api_key', value: 'sk-ant-bench-key' },
        ...runnerPaths(findPackageRoot(import.meta.url)),
        loadMountAllowlist: () => null,
        loadEgressAllowlist: () => ({ default: [], groups: {} }),
        userHome,
        now: Date.now,
      }),
  });
  const built = channel as FakeChannel | null;
  if (!built) throw new Error(`${label}: the host built no channel`);
  return { host, channel: built, backend };
}
