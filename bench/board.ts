// The board profiles (`npm run bench -- --board 1gb [--engine lite]`): the
// host and its concurrent real agent runs (Claude Code or the lite engine in
// bwrap, the scripted fake model) inside a cgroup limited to the board's memory
// and one CPU's worth of quota, on cgroup v2 or v1, whichever this machine has
// (root needed). The limit is emulated: the machine's own cores and memory
// bandwidth are not a board's. Reports the host's idle RSS, the cgroup's peak
// memory, each run's peak PSS, message → first model request, whether all
// runs were live at once (or the extra chat waited for a slot), and the OOM
// kills the cgroup saw (which must be 0).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  startFakeModelServer,
  type RecordedRequest,
  type StaticTurn,
} from '../test/support/fake-model-server.js';
import { medianFigure, type BenchFigure } from './figure.js';
import {
  PLANS,
  boardFolders,
  boardSuffix,
  boardVerdict,
  type BoardCheck,
  type BoardEngine,
  type BoardPlan,
} from './board-plan.js';
import { cliLaunch, cliNodeFlags } from './host-process.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const CHILD = path.join(ROOT, 'dist', 'bench-host', 'board-host-child.mjs');
const NOTE = 'emulated: cgroup limit on a shared 2-core machine, not a real board';
const PSS_SAMPLE_MS = 50;

export interface BoardProfile {
  memoryBytes: number;
  cpuQuotaUs: number;
  cpuPeriodUs: number;
}

export const BOARDS: Record<string, BoardProfile> = {
  '1gb': { memoryBytes: 1024 ** 3, cpuQuotaUs: 100_000, cpuPeriodUs: 100_000 },
  '512mb': { memoryBytes: 512 * 1024 ** 2, cpuQuotaUs: 100_000, cpuPeriodUs: 100_000 },
};

/** One cgroup (v2) or one memory + one cpu cgroup (v1), made for this bench and removed after. */
interface Cgroup {
  version: 1 | 2;
  /** The shell line that moves the shell into the group(s) before it execs the child. */
  enterCommand: string;
  peakBytes(): number | null;
  oomKills(): number;
  remove(): void;
}

/** Removes a cgroup and the groups the sandbox made inside it (per-run groups), deepest first. */
function removeTree(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(path.join(dir, entry.name));
  }
  fs.rmdirSync(dir);
}

function read(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

function makeCgroup(name: string, board: BoardProfile): Cgroup {
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    // v2: a child of our own group, with memory and cpu delegated to it.
    const own =
      read('/proc/self/cgroup')
        .split('\n')
        .find((line) => line.startsWith('0::'))
        ?.slice(3) ?? '/';
    const parent = path.join('/sys/fs/cgroup', own);
    fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+memory +cpu');
    const dir = path.join(parent, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'memory.max'), String(board.memoryBytes));
    fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    fs.writeFileSync(path.join(dir, 'cpu.max'), `${board.cpuQuotaUs} ${board.cpuPeriodUs}`);
    return {
      version: 2,
      enterCommand: `echo $$ > ${dir}/cgroup.procs`,
      peakBytes: () =>
        fs.existsSync(path.join(dir, 'memory.peak')) ? Number(read(path.join(dir, 'memory.peak'))) : null,
      oomKills: () => Number(/^oom_kill (\d+)/m.exec(read(path.join(dir, 'memory.events')))?.[1] ?? 0),
      remove: () => removeTree(dir),
    };
  }
  // v1: one group in the memory hierarchy (under our own) and one in the cpu hierarchy.
  const ownIn = (controller: string): string =>
    read('/proc/self/cgroup')
      .split('\n')
      .map((line) => line.split(':'))
      .find((parts) => parts[1]?.split(',').includes(controller))?.[2] ?? '/';
  const memory = path.join('/sys/fs/cgroup/memory', ownIn('memory'), name);
  const cpu = path.join('/sys/fs/cgroup/cpu', ownIn('cpu'), name);
  fs.mkdirSync(memory);
  fs.mkdirSync(cpu);
  fs.writeFileSync(path.join(memory, 'memory.limit_in_bytes'), String(board.memoryBytes));
  try {
    // No swap to hide behind, as on a board without swap.
    fs.writeFileSync(path.join(memory, 'memory.memsw.limit_in_bytes'), String(board.memoryBytes));
  } catch {
    // Swap accounting is off on this kernel: there is no swap to limit.
  }
  fs.writeFileSync(path.join(cpu, 'cpu.cfs_period_us'), String(board.cpuPeriodUs));
  fs.writeFileSync(path.join(cpu, 'cpu.cfs_quota_us'), String(board.cpuQuotaUs));
  return {
    version: 1,
    enterCommand: `echo $$ > ${memory}/cgroup.procs && echo $$ > ${cpu}/cgroup.procs`,
    peakBytes: () => Number(read(path.join(memory, 'memory.max_usage_in_bytes'))),
    oomKills: () => Number(/^oom_kill (\d+)/m.exec(read(path.join(memory, 'memory.oom_control')))?.[1] ?? 0),
    remove: () => {
      removeTree(memory);
      removeTree(cpu);
    },
  };
}

/** The cgroup empties once the child's last process is reaped; the kernel may take a moment. */
async function removeCgroup(cgroup: Cgroup): Promise<void> {
  for (let tries = 0; ; tries++) {
    try {
      cgroup.remove();
      return;
    } catch (err) {
      if (tries > 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Children of `pid`, from /proc (field 4 of stat is the parent). */
function childrenOf(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = read(`/proc/${entry}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

function subtree(root: number, children: Map<number, number[]>): number[] {
  const out: number[] = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

function pssKb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(read(`/proc/${pid}/smaps_rollup`))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

interface ChildEvent {
  event: string;
  at: number;
  rssKb?: number;
  folder?: string;
  maxActive?: number;
  queuedWaited?: boolean;
}

/** Whether the model is being answered a tool result (Messages API, or chat completions' `tool` role). */
function answersTool(request: RecordedRequest): boolean {
  const messages = (request.body as { messages?: Array<{ role?: string; content: unknown }> }).messages ?? [];
  const last = messages.at(-1);
  if (last?.role === 'tool') return true;
  const content = last?.content;
  return Array.isArray(content) && content.some((b: { type?: string }) => b.type === 'tool_result');
}

/**
 * Each conversation runs a shell command first, so the runs overlap. Lite's
 * six cold starts share one CPU of quota, so its runs hold their slot longer:
 * the last one starts while the first is still in its command.
 */
function route(engine: BoardEngine, request: RecordedRequest): StaticTurn {
  if (answersTool(request)) return { text: 'done on the board' };
  return engine === 'lite'
    ? { toolUse: { name: 'bash', input: { command: 'sleep 6; ls /workspace' } } }
    : {
        toolUse: {
          name: 'Bash',
          input: { command: 'sleep 2; ls /workspace', description: 'wait, then list' },
        },
      };
}

/** Whether a sandbox tree runs the runner (a node process), not the start-up probe's /bin/true. */
function runsNode(pids: number[]): boolean {
  return pids.some((pid) => {
    try {
      return read(`/proc/${pid}/comm`).trim() === 'node';
    } catch {
      return false;
    }
  });
}

/** One profile run's figures by name: value and unit. */
type Round = Map<string, { values: number[]; unit: string }>;

/**
 * The profile, run `rounds` times (each a fresh host and cgroup); every figure
 * gets its spread. The verdict (all runs live at once, no OOM kill) goes to
 * stderr, beside the figures that show it.
 */
export async function benchBoard(
  boardName: string,
  engine: BoardEngine = 'claude-code',
  rounds = 3,
): Promise<BenchFigure[]> {
  const board = BOARDS[boardName];
  if (!board) throw new Error(`unknown board "${boardName}"; known: ${Object.keys(BOARDS).join(', ')}`);
  const plan = PLANS[engine]?.[boardName];
  if (!plan)
    throw new Error(`no ${engine} plan for board "${boardName}"; engines: ${Object.keys(PLANS).join(', ')}`);
  if (process.getuid?.() !== 0) throw new Error('the board profile needs root (it makes cgroups)');
  if (!fs.existsSync(CHILD)) throw new Error(`${CHILD} is missing: run npm run build first`);
  const all: Round = new Map();
  const checks: BoardCheck[] = [];
  let version = 0;
  for (let i = 0; i < rounds; i++) {
    const round = await boardOnce(boardName, board, engine, plan);
    version = round.version;
    checks.push(round.check);
    for (const [name, { values, unit }] of round.figures) {
      const entry = all.get(name) ?? { values: [], unit };
      entry.values.push(...values);
      all.set(name, entry);
    }
  }
  const verdict = boardVerdict(plan, checks);
  process.stderr.write(`board ${boardName} ${engine}: ${verdict.text}\n`);
  const note = `${NOTE} (cgroup v${version}, ${board.memoryBytes / 1024 ** 2} MiB, cpu ${board.cpuQuotaUs}/${board.cpuPeriodUs} us, ${engine}, ${plan.slots} slots, ${plan.chats} chats)`;
  return [...all].map(([name, { values, unit }]) => ({
    ...medianFigure(name, values, unit, unit === 'ms' ? 0 : 1),
    note,
  }));
}

async function boardOnce(
  boardName: string,
  board: BoardProfile,
  engine: BoardEngine,
  plan: BoardPlan,
): Promise<{ version: 1 | 2; figures: Round; check: BoardCheck }> {
  const firstRequestAt = new Map<string, number>();
  const fake = await startFakeModelServer({
    script: Array.from({ length: 200 }, () => (request: RecordedRequest) => {
      const at = performance.timeOrigin + performance.now();
      const text = JSON.stringify((request.body as { messages?: unknown }).messages ?? '');
      const folder = /board run for (board-[a-z])/.exec(text)?.[1];
      if (folder && !firstRequestAt.has(folder)) firstRequestAt.set(folder, at);
      return route(engine, request);
    }),
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-board-'));
  fs.chmodSync(dir, 0o755);
  const cgroup = makeCgroup(`nanoclaw-board-${process.pid}`, board);
  const events: ChildEvent[] = [];
  const peakPss = new Map<number, number>();
  let maxLiveSandboxes = 0;
  let peakRssSumKb = 0;
  let child: ReturnType<typeof spawn> | null = null;
  let sampler: NodeJS.Timeout | null = null;
  let oomKills = 0;
  let peakBytes: number | null = null;
  try {
    child = spawn(
      '/bin/sh',
      ['-c', `${cgroup.enterCommand} && exec "$0" "$@"`, process.execPath, ...cliNodeFlags(), CHILD],
      {
        env: {
          ...process.env,
          ...cliLaunch().env,
          BOARD_DIR: dir,
          BOARD_MODEL_URL: fake.url,
          BOARD_ENGINE: engine,
          BOARD_SLOTS: String(plan.slots),
          BOARD_CHATS: String(plan.chats),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const hostPid = child.pid as number;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        events.push(JSON.parse(buffered.slice(0, nl)) as ChildEvent);
        buffered = buffered.slice(nl + 1);
      }
    });
    // Per run: the PSS of each sandbox tree hanging off the host (one bwrap per run),
    // and how many run trees were alive in the same sample.
    sampler = setInterval(() => {
      const children = childrenOf();
      let live = 0;
      for (const top of children.get(hostPid) ?? []) {
        const tree = subtree(top, children);
        if (!runsNode(tree)) continue;
        live++;
        const total = tree.reduce((sum, pid) => sum + pssKb(pid), 0);
        peakPss.set(top, Math.max(peakPss.get(top) ?? 0, total));
      }
      maxLiveSandboxes = Math.max(maxLiveSandboxes, live);
      const rssSum = subtree(hostPid, children).reduce((sum, pid) => sum + rssKb(pid), 0);
      peakRssSumKb = Math.max(peakRssSumKb, rssSum);
    }, PSS_SAMPLE_MS);
    const code = await new Promise<number | null>((resolve) => child?.on('exit', resolve));
    if (code !== 0 || !events.some((e) => e.event === 'done')) {
      throw new Error(`board host exited (${code}) before it was done: ${stderr.slice(-2000)}`);
    }
  } finally {
    if (sampler) clearInterval(sampler);
    // A failed round must not leave its host, its sandboxes or its cgroup behind.
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    oomKills = cgroup.oomKills();
    peakBytes = cgroup.peakBytes();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
    await removeCgroup(cgroup).catch((err: unknown) =>
      process.stderr.write(`board: could not remove the bench cgroup (remove it by hand): ${String(err)}\n`),
    );
  }

  const at = (name: string, folder?: string): number => {
    const found = events.find((e) => e.event === name && (folder === undefined || e.folder === folder));
    if (!found) throw new Error(`board: no "${name}" event`);
    return found.at;
  };
  const idle = events.find((e) => e.event === 'idle')?.rssKb ?? NaN;
  const done = events.find((e) => e.event === 'done');
  const firstRequestMs = boardFolders(plan.chats).map((folder) => {
    const requested = firstRequestAt.get(folder);
    if (requested === undefined) throw new Error(`board: ${folder} never reached the model`);
    return requested - at('stored', folder);
  });
  // The runs that started at once, and the ones that waited for a slot.
  const sorted = [...firstRequestMs].sort((a, b) => a - b);
  const runPss = [...peakPss.values()].map((kb) => kb / 1024);
  const maxActive = done?.maxActive ?? NaN;
  const queuedWaited = done?.queuedWaited === true;
  const figures: Round = new Map();
  const add = (name: string, values: number[], unit: string): void => {
    figures.set(`${name}${boardSuffix(boardName, engine)}`, { values, unit });
  };
  add('host_idle_rss_mb', [idle / 1024], 'MB');
  add('peak_total_memory_mb', [peakBytes === null ? NaN : peakBytes / 1024 ** 2], 'MB');
  // The cgroup's charge leaves out file pages another cgroup of this shared machine faulted in
  // first (the node binary, libc); the RSS sum counts them once per process. A board is between.
  add('peak_rss_sum_mb', [peakRssSumKb / 1024], 'MB');
  // Every run's peak, a queued one's included: it ran while an earlier one was ending.
  add('run_peak_pss_mb', runPss, 'MB');
  add('first_model_request_ms', sorted.slice(0, plan.slots), 'ms');
  if (plan.chats > plan.slots) {
    // Claude Code's 1 GB names as they were: its third chat is the one that queues.
    const queued = plan.slots === 2 && plan.chats === 3 ? 'third_run' : 'queued_run';
    add(`${queued}_first_request_ms`, sorted.slice(plan.slots), 'ms');
    add(`${queued}_waited_for_slot`, [queuedWaited ? 1 : 0], 'bool');
  } else {
    add('all_runs_concurrent', [maxActive >= plan.chats && maxLiveSandboxes >= plan.chats ? 1 : 0], 'bool');
  }
  add('max_concurrent_runs', [maxActive], 'runs');
  add('max_live_sandboxes', [maxLiveSandboxes], 'runs');
  add('oom_kills', [oomKills], 'count');
  return {
    version: cgroup.version,
    figures,
    check: { maxActive, maxLiveSandboxes, queuedWaited, oomKills },
  };
}
