// Builds a complete host on a temp directory for tests and benchmarks: real
// SQLite, real queue, scheduler and outbox; the channel and runs are doubles.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/config.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Group } from '../../src/core/types.js';
import { createHost, type Host } from '../../src/host.js';
import type { AgentRuns } from '../../src/runs/types.js';
import { FakeChannel } from './fake-channel.js';
import { makeGroup } from './groups.js';
import { FakeRuns } from './fake-runs.js';

export interface TestHost {
  host: Host;
  channel: FakeChannel;
  runs: AgentRuns;
  config: Config;
  dir: string;
  addGroup(partial: Partial<Group> & Pick<Group, 'jid' | 'folder'>): Group;
  cleanup(): Promise<void>;
}

export function makeTestConfig(dir: string, overrides: Partial<Config> = {}): Config {
  const base = loadConfig({
    env: {
      NANOCLAW_HOME: dir,
      NANOCLAW_CONFIG_DIR: path.join(dir, 'policy'),
      TZ: 'UTC',
      ASSISTANT_NAME: 'Andy',
    },
    cwd: dir,
    userHome: dir,
  });
  return {
    ...base,
    retryBaseMs: 20,
    outboxRetryBaseMs: 20,
    outboxRetryMaxMs: 100,
    shutdownGraceMs: 500,
    ...overrides,
  };
}

export function buildTestHost(
  options: {
    runs?: AgentRuns;
    config?: Partial<Config>;
    dir?: string;
    showsBotName?: boolean;
    now?: () => number;
  } = {},
): TestHost {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-host-'));
  const config = makeTestConfig(dir, options.config);
  const runs = options.runs ?? new FakeRuns();
  let channel: FakeChannel | null = null;
  const host = createHost({
    config,
    logger: silentLogger(),
    makeChannels: (events) => {
      channel = new FakeChannel(events, options.showsBotName ?? true);
      return [channel];
    },
    makeRuns: () => runs,
    now: options.now,
    random: () => 0.5,
  });
  if (!channel) throw new Error('channel not built');
  const built: FakeChannel = channel;
  let stopped = false;
  return {
    host,
    channel: built,
    runs,
    config,
    dir,
    addGroup(partial) {
      const group = makeGroup(partial.folder, partial);
      host.store.addGroup(group);
      return group;
    },
    async cleanup() {
      if (!stopped) {
        stopped = true;
        await host.stop();
      }
      if (!options.dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
