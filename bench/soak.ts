// The host under steady traffic: `nanoclaw chat --json` on the 50-group, 10k-
// message home, a message every 500 ms across the groups (every tenth wakes its
// group; the echo engine answers), RSS sampled every 5 s. Reports RSS at the
// start, the plateau (median of the last third of the samples, with their
// spread) and the growth between them. NANOCLAW_SOAK_MINUTES sets the length.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { CLI, cliNodeFlags, prepareHome, rssMb } from './host-process.js';
import { medianFigure, roundTo, type BenchFigure } from './figure.js';

const SAMPLE_MS = 5_000;
const MESSAGE_EVERY_MS = 500;

export async function benchSoak(): Promise<BenchFigure[]> {
  const minutes = Number(process.env.NANOCLAW_SOAK_MINUTES ?? 3);
  const prepared = prepareHome((i) => (i === 0 ? 'local:main' : `local:g${i}`), false);
  const child = spawn(process.execPath, [...cliNodeFlags(), CLI, 'chat', '--json'], {
    env: prepared.env,
    cwd: prepared.dir,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let replies = 0;
  child.stdout.on('data', (chunk: Buffer) => (replies += chunk.toString().split('\n').length - 1));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const samples: number[] = [];
  let sent = 0;
  const traffic = setInterval(() => {
    const group = 1 + (sent % 49);
    const text = sent % 10 === 0 ? `@Andy soak question ${sent}` : `soak chatter ${sent}`;
    child.stdin.write(`${JSON.stringify({ chat: `local:g${group}`, sender: 'soak', text })}\n`);
    sent++;
  }, MESSAGE_EVERY_MS);
  try {
    const endAt = Date.now() + minutes * 60_000;
    // The first sample once start-up has settled, then one every SAMPLE_MS.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    while (Date.now() < endAt) {
      if (child.exitCode !== null) throw new Error(`host exited during the soak: ${stderr}`);
      samples.push(rssMb(child.pid as number));
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
  } finally {
    clearInterval(traffic);
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(prepared.dir, { recursive: true, force: true });
  }
  if (replies === 0) throw new Error(`no replies during the soak: ${stderr}`);
  const plateau = samples.slice(Math.floor((samples.length * 2) / 3));
  const plateauFigure = medianFigure('host_soak_rss_mb_plateau', plateau, 'MB', 1);
  return [
    { name: 'host_soak_rss_mb_start', value: samples[0], unit: 'MB' },
    plateauFigure,
    { name: 'host_soak_rss_growth_mb', value: roundTo(plateauFigure.value - samples[0], 1), unit: 'MB' },
    { name: 'host_soak_minutes', value: minutes, unit: 'min' },
  ];
}
