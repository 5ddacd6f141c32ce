// Host benchmarks on a real child process: time from process start to ready,
// and resident memory once idle with 50 groups and 10k stored messages — for
// the local channel (`nanoclaw chat`) and for the WhatsApp host.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Group } from '../src/core/types.js';
import { shebangLaunch, type ShebangLaunch } from '../src/cli/commands/service-unit.js';
import { openStore } from '../src/store/store.js';
import { medianFigure, type BenchFigure } from './figure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');

export interface Prepared {
  dir: string;
  env: NodeJS.ProcessEnv;
}

/** A data root with 50 groups and 10k messages already answered (nothing to recover). */
export function prepareHome(jidFor: (i: number) => string, withWhatsAppLink: boolean): Prepared {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-bench-'));
  fs.chmodSync(dir, 0o755);
  const store = openStore(path.join(dir, 'store', 'nanoclaw.db'));
  const group = (i: number): Group => ({
    jid: jidFor(i),
    name: `Group ${i}`,
    folder: i === 0 ? 'main' : `g${i}`,
    trigger: '@Andy',
    requiresTrigger: i !== 0,
    isMain: i === 0,
    containerConfig: {},
    dailyTokenBudget: null,
    allowedSenders: null,
    addedAt: new Date().toISOString(),
  });
  const groups = Array.from({ length: 50 }, (_, i) => group(i));
  for (const g of groups) store.addGroup(g);
  for (let i = 0; i < 10_000; i++) {
    const g = groups[i % 50];
    const stored = store.insertMessage({
      chatJid: g.jid,
      id: `m${i}`,
      sender: 's',
      senderName: 'Someone',
      text: `message number ${i} with a little text in it`,
      timestamp: new Date(Date.now() - (10_000 - i) * 1000).toISOString(),
      fromMe: false,
      isBotMessage: false,
    });
    if (stored) store.setCursor(g.jid, stored.seq);
  }
  store.close();
  if (withWhatsAppLink) {
    const auth = path.join(dir, 'store', 'auth');
    fs.mkdirSync(auth, { recursive: true, mode: 0o700 });
    fs.writeFileSync(
      path.join(auth, 'creds.json'),
      JSON.stringify({ me: { id: '15550001111:7@s.whatsapp.net' }, account: { details: 'bench' } }),
    );
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    NANOCLAW_HOME: dir,
    NANOCLAW_CONFIG_DIR: path.join(dir, 'policy'),
    TZ: 'UTC',
    NANOCLAW_ENGINE: 'echo',
    LOG_LEVEL: 'info',
    ...cliLaunch().env,
  };
  return { dir, env };
}

export function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

export const CLI = path.join(ROOT, 'bin', 'nanoclaw.mjs');
/** Start-ups per figure: enough for a median that a busy neighbour does not move much. */
const RUNS = 9;

/** How the shipped command starts node (its first line), so a child is sized like the product. */
export function cliLaunch(): ShebangLaunch {
  return shebangLaunch(fs.readFileSync(CLI, 'utf8').split('\n')[0]);
}

export function cliNodeFlags(): string[] {
  return cliLaunch().nodeArgs;
}

/** Spawns the host, waits for "host ready", samples RSS after it settles, then stops it. */
async function startOnce(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ readyMs: number; rssMb: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [...cliNodeFlags(), ...args], {
    env,
    cwd: env.NANOCLAW_HOME,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const readyMs = await new Promise<number>((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`host not ready in 20 s: ${stderr}`)), 20_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('"host ready"')) {
        clearTimeout(timer);
        resolve(performance.now() - started);
      }
    });
    child.on('exit', (code) => reject(new Error(`host exited (${code}) before ready: ${stderr}`)));
  });
  // Idle: let start-up garbage settle before reading memory.
  await new Promise((r) => setTimeout(r, 1500));
  const rss = rssMb(child.pid as number);
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await exited;
  return { readyMs, rssMb: rss };
}

async function measure(label: string, args: string[], prepared: Prepared): Promise<BenchFigure[]> {
  const ready: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const sample = await startOnce(args, prepared.env);
    ready.push(sample.readyMs);
    rss.push(sample.rssMb);
  }
  fs.rmSync(prepared.dir, { recursive: true, force: true });
  return [
    medianFigure(`host_ready_ms${label}`, ready, 'ms', 0),
    medianFigure(`host_idle_rss_mb${label}`, rss, 'MB', 1),
  ];
}

export async function benchHostProcess(): Promise<BenchFigure[]> {
  const local = await measure(
    '',
    [CLI, 'chat', '--json'],
    prepareHome((i) => (i === 0 ? 'local:main' : `local:g${i}`), false),
  );
  const whatsapp = await measure(
    '_whatsapp',
    // The child as `npm run build` bundles it, like the shipped command.
    [path.join(ROOT, 'dist', 'bench-host', 'whatsapp-host-child.mjs')],
    prepareHome(
      (i) => (i === 0 ? '15550001111@s.whatsapp.net' : `1203630000${String(i).padStart(4, '0')}@g.us`),
      true,
    ),
  );
  return [...local, ...whatsapp];
}
