// The shipped host is the esbuild bundle in dist/host (npm run build). What
// makes it start fast and small must hold for every build: commands that never
// talk to WhatsApp load no Baileys, every chunk's text is Latin-1 (V8 keeps a
// module's source in memory, two bytes a character as soon as one character is
// wider), and the only packages left to Node's resolver are the ones that must
// be (native or binary-carrying), so a fresh install runs it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, REPO_ROOT } from '../support/cli.js';

const HOST = path.join(REPO_ROOT, 'dist', 'host');
const EXTERNAL_PACKAGES: string[] = [
  // What the build leaves to the resolver (scripts/bundle-host.mjs says why).
  ...(JSON.parse(
    fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'host-externals.json'), 'utf8'),
  ) as string[]),
  // Loaded at the first cron expression (src/scheduler/schedule.ts), not with the host.
  'cron-parser',
];
/** Only in Baileys' own dependencies (the wasm bridge's class), never in ours. */
const BAILEYS_MARKER = 'LTHashAntiTampering';

const read = (chunk: string): string => fs.readFileSync(path.join(HOST, chunk), 'utf8');

/** `import … from"./x.mjs"` and `import"./x.mjs"`: loaded with the importer, unlike `import("./x.mjs")`. */
function staticImports(source: string): string[] {
  return [...source.matchAll(/(?:\bfrom|\bimport)\s*["'](\.\/[^"']+\.mjs)["']/g)].map((m) => m[1].slice(2));
}

function staticClosure(entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const todo = [entry];
  while (todo.length > 0) {
    for (const next of staticImports(read(todo.pop() as string))) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

describe('the host bundle', () => {
  let chunks: string[] = [];
  beforeAll(() => {
    assertBuilt();
    chunks = fs.readdirSync(HOST).filter((name) => name.endsWith('.mjs'));
  });

  it('loads Baileys only through a dynamic import, never with the entry', () => {
    const eager = staticClosure('main.mjs');
    const withBaileys = chunks.filter((chunk) => read(chunk).includes(BAILEYS_MARKER));
    expect(withBaileys.length).toBeGreaterThan(0);
    for (const chunk of withBaileys) expect(eager.has(chunk), chunk).toBe(false);
  });

  it('keeps every chunk Latin-1, so V8 stores its source one byte a character', () => {
    for (const chunk of chunks) {
      const wide = [...read(chunk)].find((ch) => (ch.codePointAt(0) ?? 0) > 0xff);
      expect(wide, `${chunk} holds ${JSON.stringify(wide)}`).toBeUndefined();
    }
  });

  it('leaves only node built-ins and the native or binary packages to the resolver', () => {
    const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
    for (const chunk of chunks) {
      const source = read(chunk);
      const specifiers = [
        ...source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([@a-z][\w@/.:+-]*)["']/g),
        ...source.matchAll(/\brequire\w*\(\s*["']([@a-z][\w@/.:+-]*)["']\s*\)/g),
      ].map((m) => m[1]);
      for (const specifier of specifiers) {
        const pkg = specifier.startsWith('@')
          ? specifier.split('/').slice(0, 2).join('/')
          : specifier.split('/')[0];
        const known = builtins.has(specifier) || builtins.has(pkg) || EXTERNAL_PACKAGES.includes(pkg);
        expect(known, `${chunk} imports ${specifier}`).toBe(true);
      }
    }
  });

  it("loads neither luxon nor zod's classic API with the entry (each costs the host megabytes)", () => {
    const eager = [...staticClosure('main.mjs')].map(read).join('\n');
    expect(eager.includes('Invalid DateTime'), 'luxon in the eager chunks').toBe(false);
    // The classic API's class names; zod/mini's are ZodMini…, the core's $Zod….
    expect(eager.includes('"ZodString"'), 'zod classic in the eager chunks').toBe(false);
    // The validators the host does use come from zod/mini, with English messages.
    expect(eager.includes('Too small: expected'), 'zod English messages').toBe(true);
  });

  it("keeps Baileys' WebAssembly in files beside the chunk, and the chunk loads with them", () => {
    for (const chunk of chunks) expect(read(chunk), chunk).not.toMatch(/AGFzbQ[A-Za-z0-9+/]{1000}/);
    const wasm = fs.readdirSync(HOST).filter((name) => name.endsWith('.wasm'));
    expect(wasm.sort()).toEqual(['whatsapp-rust-bridge-0.wasm', 'whatsapp-rust-bridge-1.wasm']);
    for (const file of wasm)
      expect(fs.readFileSync(path.join(HOST, file)).subarray(0, 4)).toEqual(Buffer.from('\0asm'));
    // Importing the chunk instantiates the bridge: a missing or unreadable file fails here.
    const socketChunk = chunks.find((chunk) => read(chunk).includes(BAILEYS_MARKER)) as string;
    const load = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `await import(${JSON.stringify(path.join(HOST, socketChunk))}); console.log('loaded');`,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(load.stderr).toBe('');
    expect(load.stdout.trim()).toBe('loaded');
  });
});
