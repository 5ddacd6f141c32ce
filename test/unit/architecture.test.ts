// The folder map of ARCHITECTURE.md is the architecture: each module may import
// only the modules its row allows, so arrows go down the table. This test reads
// every import of src/ and runner/ and fails on an arrow going the wrong way.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Module → the modules it may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  core: [],
  config: ['core'],
  store: ['core'],
  queue: ['core'],
  scheduler: ['core', 'store'],
  sandbox: ['core', 'config'],
  broker: ['core', 'store', 'config'],
  runs: ['core', 'config', 'store', 'queue', 'scheduler', 'sandbox', 'broker'],
  channels: ['core'],
  cli: ['core', 'config', 'store', 'queue', 'scheduler', 'sandbox', 'broker', 'runs', 'channels', 'host'],
  host: ['core', 'config', 'store', 'queue', 'scheduler', 'sandbox', 'broker', 'runs', 'channels'],
  // The runner knows nothing of the host but the protocol (its types, and the zod-free framing).
  runner: ['core/protocol', 'core/protocol-frame'],
};

function moduleOf(file: string): string {
  const rel = path.relative(ROOT, file).split(path.sep);
  if (rel[0] === 'runner') return 'runner';
  if (rel[1] === 'host.ts') return 'host';
  return rel[1];
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function relativeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]);
  return specifiers.map((spec) => path.resolve(path.dirname(file), spec));
}

describe('module boundaries (ARCHITECTURE.md layout table)', () => {
  const files = [...sourceFiles(path.join(ROOT, 'src')), ...sourceFiles(path.join(ROOT, 'runner'))];

  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it('has every import flowing down the table', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = moduleOf(file);
      const allowed = ALLOWED[from];
      if (!allowed) {
        violations.push(`${path.relative(ROOT, file)}: module "${from}" is not in the table`);
        continue;
      }
      for (const target of relativeImports(file)) {
        const to = moduleOf(target);
        if (to === from) continue;
        const targetRel = path.relative(path.join(ROOT, 'src'), target).replace(/\.js$/, '');
        const ok = allowed.includes(to) || allowed.includes(targetRel);
        if (!ok) violations.push(`${path.relative(ROOT, file)} imports ${path.relative(ROOT, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('keeps core pure: no node built-ins with side effects', () => {
    const impure = sourceFiles(path.join(ROOT, 'src', 'core')).filter((file) =>
      /from 'node:(fs|child_process|net|http|https|dgram|os)'/.test(fs.readFileSync(file, 'utf8')),
    );
    expect(impure.map((f) => path.relative(ROOT, f))).toEqual([]);
  });
});
