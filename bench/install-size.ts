// What an install weighs on disk: the production dependencies as
// `npm ci --omit=dev` lays them out (install_size_mb), and a lite-only install,
// `npm ci --omit=dev --omit=optional` (install_size_mb_lite), which leaves out
// Claude Code's platform binary. Measured from this checkout's node_modules and
// package-lock.json (each package's own files, nested node_modules counted once),
// plus the built dist/.

import fs from 'node:fs';
import path from 'node:path';
import { findPackageRoot } from '../src/cli/package-root.js';
import type { BenchFigure } from './figure.js';

interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
}

/** Bytes on disk under `dir`, leaving out its nested node_modules (counted as packages of their own). */
function ownBytes(dir: string): number {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const current = stack.pop() as string;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(current, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') stack.push(full);
      } else {
        try {
          total += fs.lstatSync(full).blocks * 512;
        } catch {
          // Gone while we looked.
        }
      }
    }
  }
  return total;
}

export async function benchInstallSize(): Promise<BenchFigure[]> {
  const root = findPackageRoot(import.meta.url);
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  let full = ownBytes(path.join(root, 'dist'));
  let lite = full;
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (where === '' || entry.dev || entry.devOptional) continue;
    const dir = path.join(root, where);
    if (!fs.existsSync(dir)) continue;
    const bytes = ownBytes(dir);
    full += bytes;
    if (!entry.optional) lite += bytes;
  }
  const mb = (bytes: number): number => Math.round((bytes / (1024 * 1024)) * 10) / 10;
  return [
    { name: 'install_size_mb', value: mb(full), unit: 'MB' },
    { name: 'install_size_mb_lite', value: mb(lite), unit: 'MB' },
  ];
}
