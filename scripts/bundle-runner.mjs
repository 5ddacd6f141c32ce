// Bundles the in-sandbox runner at build time, so nothing is compiled when a run
// starts: dist/runner.mjs (the protocol, echo and lite) and, beside it,
// dist/runner-claude.mjs (the claude-code engine with its MCP tools and zod),
// which runner.mjs imports only for a claude-code run, so a lite or echo run
// neither parses nor evaluates it. The Agent SDK stays external: it finds its
// native Claude Code binary by package resolution, which only works from a real
// node_modules directory next to the runner.
import { build } from 'esbuild';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Must match RUNNER_CLAUDE_FILE in src/sandbox/mounts.ts. */
const CLAUDE_FILE = 'runner-claude.mjs';

const common = {
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
};

/** main.ts's dynamic import of the claude-code engine becomes an import of the sibling file. */
const claudeEngineAsSibling = {
  name: 'claude-engine-as-sibling',
  setup(b) {
    b.onResolve({ filter: /^\.\/engine-claude\.js$/ }, () => ({ path: `./${CLAUDE_FILE}`, external: true }));
  },
};

const [claude, main] = await Promise.all([
  build({
    ...common,
    entryPoints: [path.join(root, 'runner/engine-claude.ts')],
    outfile: path.join(root, 'dist', CLAUDE_FILE),
  }),
  build({
    ...common,
    entryPoints: [path.join(root, 'runner/main.ts')],
    outfile: path.join(root, 'dist/runner.mjs'),
    plugins: [claudeEngineAsSibling],
  }),
]);

function writeAtomically(outfile, contents) {
  mkdirSync(path.dirname(outfile), { recursive: true });
  const tmp = `${outfile}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, outfile);
}

// The engine first: a runner.mjs that is on disk can always find the file it imports.
writeAtomically(path.join(root, 'dist', CLAUDE_FILE), claude.outputFiles[0].contents);
writeAtomically(path.join(root, 'dist/runner.mjs'), main.outputFiles[0].contents);
