// Crash-safety benchmarks (issue "nothing lost"): how long a restarted host
// takes to re-queue every interrupted message (50 groups, 10k messages, each
// group's last messages in flight when the host died), and how many accepted
// messages a seeded drill of random kills of the real CLI host loses.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeCliHome } from '../test/support/cli.js';
import { runCrashDrill } from '../test/support/crash-drill.js';
import { FakeRuns } from '../test/support/fake-runs.js';
import { buildTestHost } from '../test/support/test-host.js';
import type { BenchFigure } from './figure.js';

const GROUPS = 50;
const MESSAGES = 10_000;

/** Restart → every group with undone messages handed to the queue. */
async function recoveryMs(): Promise<BenchFigure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-bench-recovery-'));
  const before = buildTestHost({ dir, runs: new FakeRuns() });
  const jids = Array.from({ length: GROUPS }, (_, i) => `fake:g${i}`);
  jids.forEach((jid, i) => before.addGroup({ jid, folder: `g${i}`, requiresTrigger: false }));
  const timestamp = new Date().toISOString();
  for (let i = 0; i < MESSAGES; i++) {
    const jid = jids[i % GROUPS];
    const stored = before.host.store.insertMessage({
      chatJid: jid,
      id: `m${i}`,
      sender: 's',
      senderName: 'Someone',
      text: `message number ${i}`,
      timestamp,
      fromMe: false,
      isBotMessage: false,
    });
    // All but each group's last two messages were answered before the "crash".
    if (stored && i < MESSAGES - 2 * GROUPS) before.host.store.advanceCursor(jid, stored.seq);
  }
  before.host.store.close(); // kill -9: nothing else runs

  const started = new Set<string>();
  const runs = new FakeRuns((run) => {
    started.add(run.request.group.jid);
  });
  const t0 = performance.now();
  const after = buildTestHost({ dir, runs, config: { maxConcurrentRuns: GROUPS } });
  await after.host.start();
  const requeuedMs = performance.now() - t0;
  const recovered = after.host.queue.pendingCount() + after.host.queue.activeCount();
  await after.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
  return [
    { name: 'recovery_ms', value: Math.round(requeuedMs * 10) / 10, unit: 'ms' },
    { name: 'recovery_groups_requeued', value: recovered, unit: 'groups' },
  ];
}

/** Accepted messages never answered, over seeded random kills of the real CLI host (echo engine). */
async function crashDrill(): Promise<BenchFigure[]> {
  const kills = Number(process.env.BENCH_KILLS ?? 50);
  const home = makeCliHome();
  try {
    home.writeConfig({ retryBaseMs: 100, shutdownGraceMs: 1500 });
    const report = await runCrashDrill({
      home,
      seed: 20261130,
      kills,
      folders: ['benchdrilla', 'benchdrillb'],
      taskEvery: 7,
    });
    return [
      { name: 'crash_recovery_kills', value: kills, unit: 'kills' },
      { name: 'crash_recovery_accepted', value: report.accepted.length, unit: 'messages' },
      { name: 'crash_recovery_lost_messages', value: report.lost.length, unit: 'messages' },
      { name: 'crash_recovery_duplicated_messages', value: report.duplicated.length, unit: 'messages' },
    ];
  } finally {
    home.cleanup();
  }
}

export async function benchRecovery(): Promise<BenchFigure[]> {
  return [...(await recoveryMs()), ...(await crashDrill())];
}
