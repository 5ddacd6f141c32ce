// Bundles the host (the `nanoclaw` command) into dist/host/ at build time, so a
// start does a handful of module loads instead of hundreds of resolutions and
// file reads (~50 ms of the local host's start-up on a 2-core board). Code
// splitting keeps every dynamic import() a chunk of its own: `chat` never
// parses Baileys, `start` never parses the doctor. A second bundle, built the
// same way, is the WhatsApp start-up benchmark's child, so the bench measures
// the shipped layout.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Left to Node's resolver (host-externals.json, which the bundle test reads too):
 * better-sqlite3 loads a native addon next to its package; the Agent SDK finds its
 * Claude Code binary by package resolution; the rest are Baileys' optional media
 * peers, absent from a normal install.
 */
const EXTERNAL = JSON.parse(readFileSync(path.join(root, 'scripts', 'host-externals.json'), 'utf8'));

/** Baileys' crypto bridge, whose WebAssembly builds come as base64 string literals. */
const WASM_BRIDGE = /[\\/]whatsapp-rust-bridge[\\/]dist[\\/]index\.js$/;
const WASM_BASE64_LITERAL = /"(AGFzbQ[A-Za-z0-9+/]{1000,}={0,2})"/g;
/** The bridge's SIMD and plain builds. */
const WASM_BUILDS = 2;
/** Where the bridge decodes a literal; a module read from a file passes through it as it is. */
const WASM_DECODER = 'function base64ToUint8Array(base64) {';

/**
 * whatsapp-rust-bridge inlines its two WebAssembly builds as ~1 MB base64 literals.
 * V8 keeps a module's source and its literals as long as the process lives: ~3.8 MB
 * of heap for bytes used once, at start-up, plus the decoding's garbage. The bundle
 * reads the binaries from files beside the chunk instead. A bridge whose shape
 * changed fails the build here rather than shipping unnoticed.
 */
function wasmLiteralsToFiles(outdir) {
  return {
    name: 'wasm-literals-to-files',
    setup(b) {
      b.onLoad({ filter: WASM_BRIDGE }, (args) => {
        const literals = [];
        let source = readFileSync(args.path, 'utf8').replace(WASM_BASE64_LITERAL, (_, base64) => {
          literals.push(base64);
          return `__nanoclawReadWasm(${literals.length - 1})`;
        });
        if (literals.length !== WASM_BUILDS || !source.includes(WASM_DECODER))
          throw new Error(
            `${args.path}: not the inline WebAssembly shape this build knows; update wasmLiteralsToFiles`,
          );
        source = source.replace(
          WASM_DECODER,
          `${WASM_DECODER}\n  if (typeof base64 !== 'string') return base64;`,
        );
        literals.forEach((base64, i) =>
          writeFileSync(path.join(outdir, `whatsapp-rust-bridge-${i}.wasm`), Buffer.from(base64, 'base64')),
        );
        const reader = [
          "import { readFileSync as __nanoclawReadFile } from 'node:fs';",
          'const __nanoclawReadWasm = (i) =>',
          '  __nanoclawReadFile(new URL(`./whatsapp-rust-bridge-${i}.wasm`, import.meta.url));',
        ].join('\n');
        return { contents: `${reader}\n${source}`, loader: 'js' };
      });
    },
  };
}

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
    plugins: [wasmLiteralsToFiles(tmp)],
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
