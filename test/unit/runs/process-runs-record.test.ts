// ProcessRuns keeps the owner's run record (`nanoclaw runs`): a run refused at
// its gates is recorded as refused with the reason, runs a previous host left
// open are closed as interrupted, and a storage error while recording never
// changes the run's own outcome. No sandbox is needed: every run here is refused
// before anything is spawned (the ok path is covered end to end in
// test/e2e/cli-runs.test.ts).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { silentLogger } from '../../../src/core/logger.js';
import { outcomeKind, ProcessRuns } from '../../../src/runs/process-runs.js';
import type { ToolHost } from '../../../src/runs/tools.js';
import type { StoreApi } from '../../../src/store/api.js';
import { openStore, type Store } from '../../../src/store/store.js';
import { makeGroup } from '../../support/groups.js';
import { makeTestConfig } from '../../support/test-host.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');

function setup(wrap: (store: Store) => StoreApi = (store) => store) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-runs-record-'));
  const store = openStore(path.join(dir, 'store', 'nanoclaw.db'));
  onTestFinished(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let nowMs = T0;
  const make = () =>
    new ProcessRuns({
      config: makeTestConfig(dir),
      logger: silentLogger(),
      store: wrap(store),
      tools: {} as ToolHost, // never called: no run gets past its gates
      sandbox: Promise.resolve({ backend: null, reason: 'no sandbox in this test' }),
      credential: null,
      runnerEntry: '/nonexistent/runner.mjs',
      runnerNodeModules: '/nonexistent/node_modules',
      loadMountAllowlist: () => null,
      loadEgressAllowlist: () => ({ default: [], groups: {} }),
      userHome: dir,
      now: () => (nowMs += 1000),
    });
  return { store, make };
}

const noCallbacks = { onOutput: () => undefined };

describe('ProcessRuns run record', () => {
  it('records a run refused at its gates as refused, with the reason', async () => {
    const { store, make } = setup();
    const runs = make();
    const run = runs.start(
      { group: makeGroup('family'), prompt: 'hi', task: { id: 't-1', contextMode: 'isolated' } },
      noCallbacks,
    );
    const outcome = await run.done;
    expect(outcome).toMatchObject({ ok: false, refusedToStart: true });
    expect(store.listRuns()).toEqual([
      expect.objectContaining({
        runId: run.runId,
        groupFolder: 'family',
        taskId: 't-1',
        outcome: 'refused',
        error: expect.stringContaining('no sandbox is available'),
      }),
    ]);
    const [record] = store.listRuns();
    expect(record.endedAtMs).toBeGreaterThan(record.startedAtMs);
  });

  it('closes runs a previous host left open as interrupted when it is built', () => {
    const { store, make } = setup();
    store.runStarted({ runId: 'left-open', groupFolder: 'main', startedAtMs: T0 - 60_000 });
    make();
    expect(store.listRuns()).toEqual([
      expect.objectContaining({ runId: 'left-open', outcome: 'interrupted' }),
    ]);
  });

  it('never lets a storage error while recording change the run', async () => {
    const { make } = setup((store) => {
      const failing = Object.create(store) as StoreApi;
      const diskFull = () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      };
      failing.runStarted = diskFull;
      failing.runEnded = diskFull;
      failing.interruptOpenRuns = diskFull;
      return failing;
    });
    const runs = make();
    const run = runs.start({ group: makeGroup('family'), prompt: 'hi' }, noCallbacks);
    await expect(run.done).resolves.toMatchObject({ ok: false, refusedToStart: true });
  });

  it('names how a run ended: a shutdown kill is interrupted, a limit is an error', () => {
    expect(outcomeKind({ ok: true })).toBe('ok');
    expect(outcomeKind({ ok: false, refusedToStart: true, error: 'no sandbox' })).toBe('refused');
    expect(outcomeKind({ ok: false, stoppedBy: 'killed', error: 'killed: host shutdown' })).toBe(
      'interrupted',
    );
    expect(outcomeKind({ ok: false, stoppedBy: 'wall_time', error: 'too long' })).toBe('error');
    expect(outcomeKind({ ok: false, error: 'runner exited with code 1' })).toBe('error');
  });
});
