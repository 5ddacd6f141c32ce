// Child process for the media benchmark: a real host (store, router, media
// step) with the WhatsApp channel on the fake Baileys socket, run with the
// shipped command's V8 flags. On "burst" from stdin it receives 20 photos of
// 1 MB at once; it prints its RSS when idle before and after, as JSON lines.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { silentLogger } from '../src/core/logger.js';
import { createHost } from '../src/host.js';
import { FakeBaileys } from '../test/support/fake-baileys.js';
import { FakeRuns } from '../test/support/fake-runs.js';
import { makeTestConfig } from '../test/support/test-host.js';
import { fakeWhatsAppChannel, linkFakeAccount } from '../test/support/fake-whatsapp.js';

const GROUP = '120363000000000001@g.us';
const IMAGES = 20;
const IMAGE_BYTES = 1024 * 1024;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-bench-media-'));
const config = makeTestConfig(dir, { groupMediaQuotaMb: 1024 });
linkFakeAccount(config);
const fake = new FakeBaileys(undefined, (socket) => setImmediate(() => socket.open()));
const host = createHost({
  config,
  logger: silentLogger(),
  makeChannels: (events) => [fakeWhatsAppChannel(config, events, fake)],
  makeRuns: () => new FakeRuns((run) => run.finish({ ok: true })),
});
host.store.addGroup({
  jid: GROUP,
  name: 'Family',
  folder: 'family',
  // Stored as context only: the figure is about ingest, not runs.
  trigger: '@Andy',
  requiresTrigger: true,
  isMain: false,
  containerConfig: {},
  dailyTokenBudget: null,
  allowedSenders: null,
  addedAt: new Date().toISOString(),
});
await host.start();

const report = (what: string): void => {
  process.stdout.write(`${JSON.stringify({ what, rssBytes: process.memoryUsage().rss })}\n`);
};
const idle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2000));

// The photos come from a file, streamed as Baileys streams a download: the
// figure is the host's memory, not the test double's copies of the photos.
const photoFile = path.join(dir, 'photo.jpg');
fs.writeFileSync(photoFile, Buffer.alloc(IMAGE_BYTES, 7));
const socket = fake.latest;
socket.downloadMedia = async () => fs.createReadStream(photoFile);

await idle();
report('idle');
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'burst') return;
  void (async () => {
    const messages = Array.from({ length: IMAGES }, (_, i) => {
      const id = `burst-${i}`;
      return {
        key: { remoteJid: GROUP, id, fromMe: false, participant: '15550002222@s.whatsapp.net' },
        message: { imageMessage: { mimetype: 'image/jpeg', fileLength: IMAGE_BYTES } },
        messageTimestamp: Math.floor(Date.now() / 1000),
        pushName: 'Alice',
      };
    });
    socket.upsert(messages);
    while (host.store.messagesSince(GROUP, 0).length < IMAGES) await new Promise((r) => setTimeout(r, 10));
    await host.settled();
    await idle();
    report('after');
    await host.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  })();
});
