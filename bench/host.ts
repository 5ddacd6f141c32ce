// Host benchmarks that run in-process: wake latency and ingest throughput,
// through the real store, router and queue with the in-process run double.

import { performance } from 'node:perf_hooks';
import { FakeRuns } from '../test/support/fake-runs.js';
import { buildTestHost } from '../test/support/test-host.js';
import { percentile, type BenchFigure } from './figure.js';

/** Channel event stored → run started, p99 over many wakes of 20 groups. */
async function wakeLatency(): Promise<BenchFigure> {
  const startedAt: number[] = [];
  const runs = new FakeRuns((run) => {
    startedAt.push(performance.now());
    run.finish({ ok: true });
  });
  const t = buildTestHost({ runs, config: { maxConcurrentRuns: 2 } });
  for (let i = 0; i < 20; i++) t.addGroup({ jid: `fake:g${i}`, folder: `g${i}`, requiresTrigger: false });
  await t.host.start();
  const samples: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const before = performance.now();
    const count = startedAt.length;
    t.channel.receive(`fake:g${i % 20}`, `message ${i}`);
    // The run double records its start in a microtask; wait for it without polling timers.
    while (startedAt.length === count) await Promise.resolve();
    samples.push(startedAt[count] - before);
    await t.host.settled();
  }
  await t.cleanup();
  return { name: 'wake_latency_p99_ms', value: round(percentile(samples, 99)), unit: 'ms' };
}

/** Messages stored and routed (wake decided) per second across 20 groups. */
async function ingest(): Promise<BenchFigure> {
  const runs = new FakeRuns((run) => run.finish({ ok: true }));
  const t = buildTestHost({ runs });
  for (let i = 0; i < 20; i++) t.addGroup({ jid: `fake:g${i}`, folder: `g${i}`, trigger: '@Andy' });
  await t.host.start();
  const total = 20_000;
  const before = performance.now();
  for (let i = 0; i < total; i++) {
    // Every 50th message wakes its group, so routing, queueing and runs are exercised too.
    t.channel.receive(`fake:g${i % 20}`, i % 50 === 0 ? `@Andy question ${i}` : `chatter ${i}`);
  }
  await t.host.settled();
  const seconds = (performance.now() - before) / 1000;
  await t.cleanup();
  return { name: 'ingest_msgs_per_s', value: Math.round(total / seconds), unit: 'msgs/s' };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export async function benchHost(): Promise<BenchFigure[]> {
  return [await wakeLatency(), await ingest()];
}
