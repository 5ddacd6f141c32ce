// Child process of the board profiles (`npm run bench -- --board 1gb`),
// started inside the cgroup: the real host (store, router, queue, broker,
// ProcessRuns with the parent's engine in bwrap) on the fake channel, talking
// to the parent's scripted model server. It reports on stdout, one JSON line
// each: ready, idle (its RSS), and when every chat's message has been
// answered, how many runs were active at once and whether a chat beyond the
// slots waited for one. The parent drives nothing but the clock.

import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { settleHeapWhenIdle } from '../src/cli/memory-settings.js';
import { buildBenchHost } from './bench-host.js';
import { boardFolders } from './board-plan.js';
import { makeGroup } from '../test/support/groups.js';
import { makeTestConfig } from '../test/support/test-host.js';

// As bin/nanoclaw.mjs does before anything else loads.
settleHeapWhenIdle();
const dir = process.env.BOARD_DIR ?? '';
const modelUrl = process.env.BOARD_MODEL_URL ?? '';
const engine = process.env.BOARD_ENGINE === 'lite' ? 'lite' : 'claude-code';
const slots = Number(process.env.BOARD_SLOTS ?? 2);
const chats = Number(process.env.BOARD_CHATS ?? 3);
const idleSettleMs = 3_000;

function say(event: string, extra: Record<string, unknown> = {}): void {
  // Epoch ms with sub-ms precision, comparable with the parent's clock.
  process.stdout.write(
    `${JSON.stringify({ event, at: performance.timeOrigin + performance.now(), ...extra })}\n`,
  );
}

function rssKb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
}

async function until(condition: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`board: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// The shipped defaults, except a short idle timeout so a finished run frees its slot in the bench's time.
const config = makeTestConfig(dir, {
  engine,
  upstreamBaseUrl: modelUrl,
  sandbox: 'bwrap',
  maxConcurrentRuns: slots,
  idleTimeoutMs: 2_000,
  shutdownGraceMs: 5_000,
});
const { host, channel: fake, backend } = buildBenchHost(config, dir, 'board bench');
const groups = boardFolders(chats).map((folder) =>
  makeGroup(folder, { jid: `fake:${folder}`, requiresTrigger: false }),
);
for (const group of groups) host.store.addGroup(group);
await host.start();
say('ready', { rssKb: rssKb() });
await new Promise((resolve) => setTimeout(resolve, idleSettleMs));
say('idle', { rssKb: rssKb() });

// Every chat at once: as many runs start as there are slots, the rest must queue.
for (const group of groups) {
  say('stored', { folder: group.folder });
  fake.receive(group.jid, `board run for ${group.folder}`);
}
let maxActive = 0;
let queuedWaited = false;
const watch = setInterval(() => {
  const active = host.queue.activeCount();
  maxActive = Math.max(maxActive, active);
  if (active === slots && host.queue.pendingCount() > 0) queuedWaited = true;
}, 5);
await until(() => groups.every((g) => fake.sent.some((m) => m.jid === g.jid)), 'every reply');
clearInterval(watch);
host.router.closeLiveRuns();
await host.settled();
say('done', { maxActive, queuedWaited, replies: fake.sent.length });
const runIds = host.store.listRuns({ limit: 100 }).map((run) => run.runId);
await host.stop();
// Our runs' cgroups live in the machine-wide parent: drop them now, not at another host's sweep.
for (let attempt = 0; attempt < 20; attempt++) {
  for (const runId of runIds) backend.releaseRun(runId);
  await new Promise((resolve) => setTimeout(resolve, 100));
}
process.exit(0);
