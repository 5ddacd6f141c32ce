// Media benchmarks (issue 13): `media_ingest_ms`, a 1 MB photo from channel
// event to stored on disk and on its message (ready for the prompt), p50 in
// process; and the host's RSS (a child process with the shipped V8 flags)
// idle before and after a burst of 20 photos of 1 MB — the growth must stay
// under 5 MB once they are done.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { InboundAttachment } from '../src/core/types.js';
import { FakeRuns } from '../test/support/fake-runs.js';
import { buildTestHost } from '../test/support/test-host.js';
import { percentile, type BenchFigure } from './figure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../../bin/nanoclaw.mjs');
const MB = 1024 * 1024;

function photo(bytes: Buffer): InboundAttachment {
  return {
    kind: 'image',
    type: 'image/jpeg',
    declaredBytes: bytes.length,
    open: async () =>
      (async function* () {
        // Delivered in 64 KiB chunks, as a download stream does.
        for (let at = 0; at < bytes.length; at += 64 * 1024) yield bytes.subarray(at, at + 64 * 1024);
      })(),
  };
}

async function ingestMs(): Promise<BenchFigure> {
  const t = buildTestHost({
    runs: new FakeRuns((run) => run.finish({ ok: true })),
    config: { groupMediaQuotaMb: 4096 },
  });
  t.addGroup({ jid: 'fake:family', folder: 'family', trigger: '@Andy' });
  await t.host.start();
  const bytes = Buffer.alloc(MB, 7);
  const samples: number[] = [];
  for (let i = 0; i < 30; i++) {
    const before = performance.now();
    t.channel.receive('fake:family', null, { id: `photo-${i}`, attachments: [photo(bytes)] });
    await t.host.settled();
    samples.push(performance.now() - before);
    const stored = t.host.store.messagesSince('fake:family', 0).at(-1);
    if (stored?.media?.[0]?.sizeBytes !== MB) throw new Error('photo not stored');
  }
  await t.cleanup();
  return { name: 'media_ingest_ms', value: Math.round(percentile(samples, 50) * 10) / 10, unit: 'ms' };
}

async function burstRss(): Promise<BenchFigure[]> {
  const flags = fs
    .readFileSync(CLI, 'utf8')
    .split('\n')[0]
    .split(/\s+/)
    .filter((w) => w.startsWith('--'));
  const child = spawn(process.execPath, [...flags, path.join(HERE, 'media-host-child.js')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const reports: Record<string, number> = {};
  const lines = readline.createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`media child exited ${code}`))));
    lines.on('line', (line) => {
      const { what, rssBytes } = JSON.parse(line) as { what: string; rssBytes: number };
      reports[what] = rssBytes;
      if (what === 'idle') child.stdin.write('burst\n');
    });
  });
  const mb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;
  return [
    { name: 'media_idle_rss_mb', value: mb(reports.idle), unit: 'MB' },
    { name: 'media_rss_after_20_images_mb', value: mb(reports.after), unit: 'MB' },
    { name: 'media_rss_growth_20_images_mb', value: mb(reports.after - reports.idle), unit: 'MB' },
  ];
}

export async function benchMedia(): Promise<BenchFigure[]> {
  return [await ingestMs(), ...(await burstRss())];
}
