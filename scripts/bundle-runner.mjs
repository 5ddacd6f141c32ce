// Bundles the in-sandbox runner into one file (dist/runner.mjs) at build time,
// so nothing is compiled when a run starts. The Agent SDK stays external: it
// finds its native Claude Code binary by package resolution, which only works
// from a real node_modules directory next to the runner.
import { build } from 'esbuild';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const outfile = path.join(root, 'dist/runner.mjs');
const result = await build({
  entryPoints: [path.join(root, 'runner/main.ts')],
  outfile,
  // Written by hand below: tests bundle in parallel, and a reader must never see half a file.
  write: false,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['@anthropic-ai/claude-agent-sdk'],
  // Bundled CommonJS dependencies may call require(); give ESM output one.
  banner: {
    js: "import { createRequire as __nanoclawCreateRequire } from 'node:module'; const require = __nanoclawCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
  legalComments: 'none',
});

mkdirSync(path.dirname(outfile), { recursive: true });
const tmp = `${outfile}.${process.pid}.tmp`;
writeFileSync(tmp, result.outputFiles[0].contents);
renameSync(tmp, outfile);
