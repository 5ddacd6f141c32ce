// A run whose sandbox user cannot reach a bind source is refused before anything
// is spawned, and the chat gets the blocking directory and the exact chmod (issue
// 10). Real bwrap backend, real store; runs as root like CI (bwrap then spawns as
// uid 1000, the case where a 0700 directory matters).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { silentLogger } from '../../../src/core/logger.js';
import { ProcessRuns } from '../../../src/runs/process-runs.js';
import type { ToolHost } from '../../../src/runs/tools.js';
import { BwrapBackend } from '../../../src/sandbox/bwrap.js';
import { openStore } from '../../../src/store/store.js';
import { makeGroup } from '../../support/groups.js';
import { makeTestConfig } from '../../support/test-host.js';

describe('ProcessRuns and sandbox access', () => {
  it('refuses a run whose install the sandbox user cannot reach, naming the directory and the chmod', async () => {
    expect(process.getuid?.()).toBe(0);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-runs-access-'));
    fs.chmodSync(dir, 0o755);
    // The install lives in a directory only root may enter (like /root or a mktemp dir).
    const install = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-install-'));
    fs.mkdirSync(path.join(install, 'node_modules'));
    fs.writeFileSync(path.join(install, 'runner.mjs'), '');
    const store = openStore(path.join(dir, 'store', 'nanoclaw.db'));
    onTestFinished(() => {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(install, { recursive: true, force: true });
    });
    const config = makeTestConfig(dir, { engine: 'echo' });
    const backend = new BwrapBackend({
      runsDir: config.paths.runsDir,
      etcDir: path.join(config.paths.dataDir, 'sandbox-etc'),
      cgroups: 'off',
    });
    fs.mkdirSync(config.paths.runsDir, { recursive: true });
    const runs = new ProcessRuns({
      config,
      logger: silentLogger(),
      store,
      tools: {} as ToolHost, // never called: the run is refused before it spawns
      sandbox: Promise.resolve({ backend, reason: 'bwrap (test)' }),
      credential: null,
      runnerEntry: path.join(install, 'runner.mjs'),
      runnerNodeModules: path.join(install, 'node_modules'),
      loadMountAllowlist: () => null,
      loadEgressAllowlist: () => ({ default: [], groups: {} }),
      userHome: dir,
      now: Date.now,
    });
    const run = runs.start({ group: makeGroup('family'), prompt: 'hi' }, { onOutput: () => undefined });
    const outcome = await run.done;
    expect(outcome).toMatchObject({ ok: false, refusedToStart: true });
    expect(outcome.error).toMatch(/^the sandbox cannot start: the sandbox user \(uid 1000\) cannot enter /);
    expect(outcome.error).toContain(`Fix: run \`chmod o+x ${install}\``);
    expect(store.listAudit({ action: 'run_start' })).toEqual([
      expect.objectContaining({ runId: run.runId, reason: 'sandbox_unavailable' }),
    ]);
    expect(store.listRuns()).toEqual([expect.objectContaining({ runId: run.runId, outcome: 'refused' })]);
    // Not NanoClaw's directory: left as it was.
    expect(fs.statSync(install).mode & 0o777).toBe(0o700);
  });
});
