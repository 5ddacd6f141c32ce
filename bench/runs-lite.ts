// What a `lite` run costs, measured like claude-code's in runs.ts (the real
// host, bwrap, the broker and the scripted fake model): message stored → first
// model request of a cold run, and the peak memory of the whole sandboxed run
// tree over a short conversation with one bash tool call — RSS, PSS, and the
// private pages (what each further concurrent run adds).

import type { RecordedRequest, StaticTurn } from '../test/support/fake-model-server.js';
import type { BenchFigure } from './figure.js';
import { benchFirstRequest, descendants, pssKb, readKb, round, rssKb, startRealHost, until } from './runs.js';

const RSS_SAMPLE_MS = 20;

/** Private_Clean + Private_Dirty: memory no other process shares. */
function privateKb(pid: number): number {
  const rollup = `/proc/${pid}/smaps_rollup`;
  return readKb(rollup, /^Private_Clean:\s+(\d+) kB/m) + readKb(rollup, /^Private_Dirty:\s+(\d+) kB/m);
}

function answersTool(request: RecordedRequest): boolean {
  const messages = (request.body as { messages?: Array<{ content: unknown }> }).messages ?? [];
  const last = messages.at(-1)?.content;
  return Array.isArray(last) && last.some((b: { type?: string }) => b.type === 'tool_result');
}

async function benchPeakMemoryLite(): Promise<BenchFigure[]> {
  const route = (request: RecordedRequest): StaticTurn =>
    answersTool(request)
      ? { text: 'listed the folder' }
      : { toolUse: { name: 'bash', input: { command: 'ls -la /workspace' } } };
  const t = await startRealHost(route, 'lite');
  let peak = { rss: 0, pss: 0, priv: 0 };
  const sampler = setInterval(() => {
    const tree = descendants(process.pid);
    const sum = (f: (pid: number) => number): number => tree.reduce((s, pid) => s + f(pid), 0);
    peak = {
      rss: Math.max(peak.rss, sum(rssKb)),
      pss: Math.max(peak.pss, sum(pssKb)),
      priv: Math.max(peak.priv, sum(privateKb)),
    };
  }, RSS_SAMPLE_MS);
  try {
    const group = t.addGroup('rss');
    t.channel.receive(group.jid, 'list your workspace');
    await until(() => t.channel.sent.length >= 1, 'the reply');
    // A second turn in the same run: the history and the live process, as a chat has them.
    t.channel.receive(group.jid, 'and once more');
    await until(() => t.channel.sent.length >= 2, 'the second reply');
    t.host.router.closeLiveRuns();
    await t.host.settled();
  } finally {
    clearInterval(sampler);
    await t.cleanup();
  }
  if (peak.rss === 0) throw new Error('bench runs-lite: no sandbox process was sampled');
  return [
    { name: 'run_peak_rss_mb_lite', value: round(peak.rss / 1024), unit: 'MB' },
    { name: 'run_peak_pss_mb_lite', value: round(peak.pss / 1024), unit: 'MB' },
    { name: 'run_private_mb_lite', value: round(peak.priv / 1024), unit: 'MB' },
  ];
}

/**
 * The board profile: `count` lite runs live at once (each inside a bash tool
 * call), and the peak PSS of all their sandbox trees together — shared pages
 * (the node binary, libc) counted once, as the kernel has them.
 */
async function benchConcurrentLite(count: number): Promise<BenchFigure> {
  const route = (request: RecordedRequest): StaticTurn =>
    answersTool(request)
      ? { text: 'done' }
      : { toolUse: { name: 'bash', input: { command: 'ls /workspace/group >/dev/null; sleep 3' } } };
  const t = await startRealHost(route, 'lite', count);
  let peakPssKb = 0;
  let peakRuns = 0;
  const sampler = setInterval(() => {
    const tree = descendants(process.pid);
    peakPssKb = Math.max(
      peakPssKb,
      tree.reduce((s, pid) => s + pssKb(pid), 0),
    );
    peakRuns = Math.max(peakRuns, t.host.router.liveRunCount());
  }, RSS_SAMPLE_MS);
  try {
    const groups = Array.from({ length: count }, (_, i) => t.addGroup(`board-${i}`));
    for (const group of groups) t.channel.receive(group.jid, 'list your folder');
    await until(() => t.channel.sent.length >= count, 'every reply', 60_000);
    t.host.router.closeLiveRuns();
    await t.host.settled();
  } finally {
    clearInterval(sampler);
    await t.cleanup();
  }
  if (peakRuns < count)
    throw new Error(`bench runs-lite: only ${peakRuns} of ${count} runs were live at once`);
  return { name: `runs_pss_mb_lite_x${count}`, value: round(peakPssKb / 1024), unit: 'MB' };
}

export async function benchRunsLite(): Promise<BenchFigure[]> {
  return [
    // Lite cold starts are cheap: more samples for the same time.
    await benchFirstRequest('lite', 5),
    ...(await benchPeakMemoryLite()),
    await benchConcurrentLite(2),
    await benchConcurrentLite(6),
  ];
}
