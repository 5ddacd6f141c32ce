// Finds the installed package's root (where dist/runner.mjs and node_modules
// live) from a module URL, whether running compiled from dist/ or as source.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function findPackageRoot(fromUrl: string): string {
  let dir = path.dirname(fileURLToPath(fromUrl));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      const { name } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string };
      if (name === 'nanoclaw') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the nanoclaw package root above ${fromUrl}`);
    dir = parent;
  }
}

export function runnerPaths(root: string): { runnerEntry: string; runnerNodeModules: string } {
  return {
    runnerEntry: path.join(root, 'dist', 'runner.mjs'),
    runnerNodeModules: path.join(root, 'node_modules'),
  };
}
