// Bundles the host (the `nanoclaw` command) into dist/host/ at build time, so a
// start does a handful of module loads instead of hundreds of resolutions and
// file reads (~50 ms of the local host's start-up on a 2-core board). Code
// splitting keeps every dynamic import() a chunk of its own: `chat` never
// parses Baileys, `start` never parses the doctor. A second bundle, built the
// same way, is the WhatsApp start-up benchmark's child, so the bench measures
// the shipped layout.
import { build } from 'esbuild';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Left to Node's resolver: better-sqlite3 loads a native addon next to its
 * package; the Agent SDK finds its Claude Code binary by package resolution;
 * the rest are Baileys' optional media peers, absent from a normal install.
 */
const EXTERNAL = [
  'better-sqlite3',
  '@anthropic-ai/claude-agent-sdk',
  'sharp',
  'jimp',
  'link-preview-js',
  'audio-decode',
  'bufferutil',
  'utf-8-validate',
];

/** Builds into a fresh temp dir, then swaps it in: parallel builds never see half a bundle. */
async function bundle(entryPoints, outdir) {
  const tmp = `${outdir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await build({
    entryPoints,
    outdir: tmp,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    // Whitespace and comments out: V8 keeps every module's source text for lazy
    // compilation, and one non-Latin-1 character in a comment (luxon's, p-queue's
    // emoji) stores the whole chunk as two-byte: 3 MB of heap for a 1.5 MB file.
    // Identifiers are kept, so a debug stack still names our functions.
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
    // Bundled CommonJS dependencies may call require(); give every ESM chunk one.
    banner: {
      js: "import { createRequire as __nanoclawCreateRequire } from 'node:module'; const require = __nanoclawCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
    legalComments: 'none',
  });
  const old = `${outdir}.${process.pid}.old`;
  try {
    renameSync(outdir, old);
  } catch {
    // First build: nothing to move aside.
  }
  renameSync(tmp, outdir);
  rmSync(old, { recursive: true, force: true });
}

await bundle({ main: path.join(root, 'src/cli/main.ts') }, path.join(root, 'dist/host'));
await bundle(
  {
    'whatsapp-host-child': path.join(root, 'bench/whatsapp-host-child.ts'),
    'board-host-child': path.join(root, 'bench/board-host-child.ts'),
  },
  path.join(root, 'dist/bench-host'),
);
