// What an agent run costs: sandbox spawn to runner `ready` (bwrap against none,
// echo engine), and with the real Claude Code in bwrap behind the real broker
// and an in-process host (FakeChannel, ProcessRuns, scripted fake model on
// loopback): message stored → first model request (cold), follow-up stored →
// the live run's next request, and the peak RSS of the sandbox's process tree.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { findPackageRoot, runnerPaths } from '../src/cli/package-root.js';
import type { Engine, StartLine } from '../src/core/protocol.js';
import type { Group } from '../src/core/types.js';
import type { Host } from '../src/host.js';
import { startAgentProcess } from '../src/runs/agent-process.js';
import { BwrapBackend } from '../src/sandbox/bwrap.js';
import { buildMountTable } from '../src/sandbox/mounts.js';
import { NoneBackend } from '../src/sandbox/none.js';
import type { SandboxBackend } from '../src/sandbox/types.js';
import { FakeChannel } from '../test/support/fake-channel.js';
import {
  startFakeModelServer,
  type FakeModelServer,
  type RecordedRequest,
  type StaticTurn,
} from '../test/support/fake-model-server.js';
import { makeTestConfig } from '../test/support/test-host.js';
import { medianFigure, percentile, type BenchFigure } from './figure.js';
import { makeGroup } from '../test/support/groups.js';
import { buildBenchHost } from './bench-host.js';

/** Groups on the fake channel that wake on every message. */
const benchGroup = (folder: string, overrides: Partial<Group> = {}): Group =>
  makeGroup(folder, { jid: `fake:${folder}`, requiresTrigger: false, ...overrides });

const SPAWN_SAMPLES = 10;
const SPAWN_WARMUP = 2;
const COLD_SAMPLES = 3;
const FOLLOWUP_SAMPLES = 5;
const RSS_SAMPLE_MS = 20;
const WAIT_MS = 30_000;

const RUNNER = runnerPaths(findPackageRoot(import.meta.url));

export function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** A temp data root the sandbox user (uid 1000) can traverse. */
function tempRoot(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export async function until(condition: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`bench runs: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

// ---- spawn → ready, bwrap against none ---------------------------------------

async function spawnToReadyMs(backend: SandboxBackend, dir: string, group: Group): Promise<number> {
  const runId = `bench-${backend.name}-${randomBytes(4).toString('hex')}`;
  const runDir = path.join(dir, 'data', 'runs', runId);
  fs.mkdirSync(runDir, { recursive: true, mode: 0o755 });
  try {
    const mounts = buildMountTable({
      group,
      groupsDir: path.join(dir, 'groups'),
      sessionsDir: path.join(dir, 'data', 'sessions'),
      extraMounts: [],
    });
    const started = performance.now();
    const spawn = backend.buildSpawn({
      runId,
      group,
      mounts,
      socketDir: runDir,
      ...RUNNER,
      env: { TZ: 'UTC', LANG: 'C.UTF-8' },
      limits: { memoryMb: 1024, pids: 256, fileSizeMb: 512 },
    });
    const start: StartLine = {
      type: 'start',
      runId,
      prompt: 'ready?',
      group: { folder: group.folder, isMain: group.isMain, name: group.name },
      assistantName: 'Andy',
      engine: 'echo',
      paths: {
        groupDir: spawn.paths.groupDir,
        globalDir: spawn.paths.globalDir,
        homeDir: spawn.paths.homeDir,
      },
    };
    let readyAt = 0;
    const agent = startAgentProcess({
      spawn,
      start,
      idleTimeoutMs: WAIT_MS,
      runTimeoutMs: WAIT_MS,
      maxWallMs: WAIT_MS,
      maxOutputBytes: 1 << 20,
      onToolCall: async () => ({ ok: false, error: 'no tools in this bench' }),
      onOutput: () => agent.close(),
      onProtocolError: (reason, detail) => {
        throw new Error(`bench runs: protocol error ${reason}: ${detail}`);
      },
      onLog: () => undefined,
      onReady: () => (readyAt = performance.now()),
    });
    const result = await agent.done;
    if (!result.ok || readyAt === 0) {
      throw new Error(`bench runs: ${backend.name} run failed: ${result.error ?? 'no ready line'}`);
    }
    return readyAt - started;
  } finally {
    backend.releaseRun?.(runId);
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

async function benchSpawn(): Promise<BenchFigure[]> {
  const dir = tempRoot('nanoclaw-bench-spawn-');
  try {
    const group = benchGroup('main', { isMain: true });
    const bwrap = new BwrapBackend({
      runsDir: path.join(dir, 'data', 'runs'),
      etcDir: path.join(dir, 'data', 'sandbox-etc'),
    });
    const available = await bwrap.available();
    if (!available.ok) throw new Error(`bench runs: bwrap is not available: ${available.detail}`);
    const none = new NoneBackend({ homesDir: path.join(dir, 'data', 'homes') });
    const samples: Record<'bwrap' | 'none', number[]> = { bwrap: [], none: [] };
    // Interleaved, so drift (page cache, CPU frequency) hits both alike.
    for (let i = 0; i < SPAWN_WARMUP + SPAWN_SAMPLES; i++) {
      const b = await spawnToReadyMs(bwrap, dir, group);
      const n = await spawnToReadyMs(none, dir, group);
      if (i < SPAWN_WARMUP) continue;
      samples.bwrap.push(b);
      samples.none.push(n);
    }
    const p50 = { bwrap: percentile(samples.bwrap, 50), none: percentile(samples.none, 50) };
    return [
      medianFigure('run_spawn_ms_bwrap', samples.bwrap, 'ms'),
      medianFigure('run_spawn_ms_none', samples.none, 'ms'),
      { name: 'run_spawn_overhead_ms_bwrap', value: round(p50.bwrap - p50.none), unit: 'ms' },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the real host with Claude Code in bwrap ---------------------------------

export interface RealHost {
  host: Host;
  channel: FakeChannel;
  fake: FakeModelServer;
  /** performance.now() at each conversation request's arrival, with the request. */
  arrivals: Array<{ at: number; request: RecordedRequest }>;
  addGroup(folder: string): Group;
  cleanup(): Promise<void>;
}

export async function startRealHost(
  route: (request: RecordedRequest) => StaticTurn,
  engine: Engine = 'claude-code',
  maxConcurrentRuns = 2,
): Promise<RealHost> {
  const dir = tempRoot('nanoclaw-bench-runs-');
  const arrivals: RealHost['arrivals'] = [];
  const fake = await startFakeModelServer({
    script: Array.from({ length: 500 }, () => (request: RecordedRequest) => {
      arrivals.push({ at: performance.now(), request });
      return route(request);
    }),
  });
  const config = makeTestConfig(dir, {
    engine,
    upstreamBaseUrl: fake.url,
    sandbox: 'bwrap',
    maxConcurrentRuns,
  });
  const { host, channel } = buildBenchHost(config, dir, 'bench');
  await host.start();
  return {
    host,
    channel,
    fake,
    arrivals,
    addGroup: (folder) => {
      const group = benchGroup(folder);
      host.store.addGroup(group);
      return group;
    },
    cleanup: async () => {
      await host.stop();
      await fake.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const textReply = (): StaticTurn => ({ text: 'ok from the fake model' });

/**
 * Message stored → the first model request of a fresh run; a new group each time, so each
 * run is cold. Named `first_token_request_ms`, with the engine as a suffix when not Claude Code.
 */
export async function benchFirstRequest(
  engine: Engine = 'claude-code',
  coldSamples = COLD_SAMPLES,
): Promise<BenchFigure> {
  const t = await startRealHost(textReply, engine);
  try {
    const samples: number[] = [];
    for (let i = 0; i < coldSamples; i++) {
      const group = t.addGroup(`cold-${i}`);
      const seen = t.arrivals.length;
      const stored = performance.now();
      t.channel.receive(group.jid, `cold start ${i}`);
      await until(() => t.arrivals.length > seen, 'the first model request');
      samples.push(t.arrivals[seen].at - stored);
      await until(() => t.channel.sent.some((m) => m.jid === group.jid), 'the reply');
      t.host.router.closeLiveRuns();
      await t.host.settled();
    }
    const suffix = engine === 'claude-code' ? '' : `_${engine}`;
    return medianFigure(`first_token_request_ms${suffix}`, samples, 'ms');
  } finally {
    await t.cleanup();
  }
}

/** Follow-up stored → the live run's next model request. */
async function benchFollowup(): Promise<BenchFigure> {
  const t = await startRealHost(textReply);
  try {
    const group = t.addGroup('followup');
    t.channel.receive(group.jid, 'first message');
    await until(() => t.channel.sent.length >= 1, 'the first reply');
    const samples: number[] = [];
    for (let i = 0; i < FOLLOWUP_SAMPLES; i++) {
      const seen = t.arrivals.length;
      const sent = t.channel.sent.length;
      const stored = performance.now();
      t.channel.receive(group.jid, `follow-up ${i}`);
      await until(() => t.arrivals.length > seen, 'the follow-up request');
      samples.push(t.arrivals[seen].at - stored);
      await until(() => t.channel.sent.length > sent, 'the follow-up reply');
    }
    if (t.host.router.liveRunCount() !== 1)
      throw new Error('bench runs: the follow-ups did not stay in one run');
    return medianFigure('followup_latency_ms', samples, 'ms');
  } finally {
    await t.cleanup();
  }
}

/** Host pids of every descendant of `root` (the sandbox tree under this process). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command name, which may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** A `… N kB` field of a /proc file; 0 when the process is gone. */
export function readKb(file: string, field: RegExp): number {
  try {
    const match = field.exec(fs.readFileSync(file, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** VmRSS counts shared pages (libc, the node binary) once per process; PSS splits them. */
export const rssKb = (pid: number): number => readKb(`/proc/${pid}/status`, /VmRSS:\s+(\d+) kB/);
export const pssKb = (pid: number): number => readKb(`/proc/${pid}/smaps_rollup`, /^Pss:\s+(\d+) kB/m);

/** Peak summed RSS of the run's process tree (bwrap, runner, Claude Code, its shell) over one short conversation. */
async function benchPeakRss(): Promise<BenchFigure[]> {
  const t = await startRealHost((request) => {
    const messages = (request.body as { messages?: Array<{ content: unknown }> }).messages ?? [];
    const last = messages.at(-1)?.content;
    const answersTool = Array.isArray(last) && last.some((b: { type?: string }) => b.type === 'tool_result');
    return answersTool
      ? { text: 'listed the folder' }
      : { toolUse: { name: 'Bash', input: { command: 'ls -la /workspace', description: 'list' } } };
  });
  let peakKb = 0;
  let peakPssKb = 0;
  const sampler = setInterval(() => {
    const tree = descendants(process.pid);
    peakKb = Math.max(
      peakKb,
      tree.reduce((sum, pid) => sum + rssKb(pid), 0),
    );
    peakPssKb = Math.max(
      peakPssKb,
      tree.reduce((sum, pid) => sum + pssKb(pid), 0),
    );
  }, RSS_SAMPLE_MS);
  try {
    const group = t.addGroup('rss');
    t.channel.receive(group.jid, 'list your workspace');
    await until(() => t.channel.sent.length >= 1, 'the reply');
    t.host.router.closeLiveRuns();
    await t.host.settled();
  } finally {
    clearInterval(sampler);
    await t.cleanup();
  }
  if (peakKb === 0) throw new Error('bench runs: no sandbox process was sampled');
  return [
    { name: 'run_peak_rss_mb', value: round(peakKb / 1024), unit: 'MB' },
    { name: 'run_peak_pss_mb', value: round(peakPssKb / 1024), unit: 'MB' },
  ];
}

export async function benchRuns(): Promise<BenchFigure[]> {
  return [
    ...(await benchSpawn()),
    await benchFirstRequest(),
    await benchFollowup(),
    ...(await benchPeakRss()),
  ];
}
