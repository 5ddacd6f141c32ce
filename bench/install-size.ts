// The size of a production install (`npm ci --omit=dev` of this package's lock
// file, in a temp dir that is removed after), split into the agent engine (the
// Claude Agent SDK with its platform binary of Claude Code, and the SDKs it
// needs) and the host (everything else: SQLite, Baileys, pino…). Needs the npm
// registry; better-sqlite3 builds or downloads its addon as in a real install.
// `install_size_mb_lite` is the same install without optional packages
// (`npm ci --omit=dev --omit=optional`): no Claude Code platform binary, every
// engine but `claude-code` works.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchFigure } from './figure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Top-level node_modules entries that belong to the agent engine, not the host. */
const ENGINE = ['@anthropic-ai', '@modelcontextprotocol'];

function diskKb(target: string): number {
  const result = spawnSync('du', ['-sk', target], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`du ${target} failed: ${result.stderr}`);
  return Number(result.stdout.split('\t')[0]);
}

export async function benchInstallSize(): Promise<BenchFigure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-install-'));
  try {
    for (const file of ['package.json', 'package-lock.json']) {
      fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
    }
    const npm = spawnSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 15 * 60_000,
    });
    if (npm.status !== 0) throw new Error(`npm ci --omit=dev failed: ${npm.stderr.slice(-2000)}`);
    const modules = path.join(dir, 'node_modules');
    const totalKb = diskKb(modules);
    const engineKb = ENGINE.map((name) => path.join(modules, name))
      .filter((p) => fs.existsSync(p))
      .reduce((sum, p) => sum + diskKb(p), 0);
    const lock = JSON.parse(fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const optionalKb = Object.entries(lock.packages)
      .filter(([where, entry]) => where !== '' && entry.optional && !entry.dev)
      .map(([where]) => path.join(dir, where))
      .filter((p) => fs.existsSync(p))
      .reduce((sum, p) => sum + diskKb(p), 0);
    const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;
    return [
      { name: 'install_size_mb_lite', value: mb(totalKb - optionalKb), unit: 'MB' },
      { name: 'install_size_mb', value: mb(totalKb), unit: 'MB' },
      { name: 'install_size_mb_host', value: mb(totalKb - engineKb), unit: 'MB' },
      { name: 'install_size_mb_agent_engine', value: mb(engineKb), unit: 'MB' },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
