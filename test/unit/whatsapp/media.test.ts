// WhatsApp media through the real host against the fake Baileys socket
// (issue 13): each media kind (image, voice note, audio, video preview,
// sticker, document) is downloaded into the group's media folder and shown in
// the prompt; the size cap and the group quota refuse with a note, a failed
// download keeps the message, and unregistered chats are never downloaded.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { WAContentLike } from '../../../src/channels/whatsapp/types.js';
import type { Config } from '../../../src/config/config.js';
import { silentLogger } from '../../../src/core/logger.js';
import { createHost, type Host } from '../../../src/host.js';
import { FakeBaileys } from '../../support/fake-baileys.js';
import { FakeRuns } from '../../support/fake-runs.js';
import { makeTestConfig } from '../../support/test-host.js';
import { until } from '../../support/until.js';
import { fakeWhatsAppChannel, linkFakeAccount } from '../../support/fake-whatsapp.js';

const FAMILY = '120363000000000001@g.us';
const STRANGER = '15550009999@s.whatsapp.net';
const ALICE = '15550002222@s.whatsapp.net';
const MB = 1024 * 1024;

let host: Host | null = null;
let dir = '';
afterEach(async () => {
  await host?.stop();
  host = null;
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(overrides: Partial<Config> = {}) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-wa-media-'));
  const config = makeTestConfig(dir, overrides);
  linkFakeAccount(config);
  const fake = new FakeBaileys(undefined, (socket) => setImmediate(() => socket.open()));
  const runs = new FakeRuns(async (run) => {
    await run.output('seen');
    run.finish({ ok: true });
  });
  const built = createHost({
    config,
    logger: silentLogger(),
    makeChannels: (events) => [fakeWhatsAppChannel(config, events, fake)],
    makeRuns: () => runs,
  });
  built.store.addGroup({
    jid: FAMILY,
    name: 'Family',
    folder: 'family',
    trigger: '@Andy',
    requiresTrigger: false,
    isMain: false,
    containerConfig: {},
    dailyTokenBudget: null,
    allowedSenders: null,
    addedAt: new Date().toISOString(),
  });
  host = built;
  await built.start();
  await until(() => built.channels[0].isConnected());
  return { host: built, socket: fake.latest, runs, config };
}

let counter = 0;
function mediaMessage(chat: string, message: WAContentLike) {
  const id = `WA${++counter}`;
  return {
    id,
    raw: {
      key: { remoteJid: chat, id, fromMe: false, participant: chat === FAMILY ? ALICE : undefined },
      message,
      messageTimestamp: Math.floor(Date.parse('2026-11-30T09:00:00Z') / 1000),
      pushName: 'Alice',
    },
  };
}

describe('WhatsApp media through the host', () => {
  it('downloads each media kind into the group folder and shows it in the prompt', async () => {
    const { host, socket, runs, config } = await start();
    const jpeg = Buffer.from('\xff\xd8\xff jpeg photo bytes', 'latin1');
    const thumb = new Uint8Array(Buffer.from('\xff\xd8\xff video preview', 'latin1'));
    const cases = [
      mediaMessage(FAMILY, {
        imageMessage: { mimetype: 'image/jpeg', fileLength: jpeg.length, caption: 'our cat' },
      }),
      mediaMessage(FAMILY, {
        audioMessage: { ptt: true, mimetype: 'audio/ogg; codecs=opus', fileLength: 9 },
      }),
      mediaMessage(FAMILY, { audioMessage: { ptt: false, mimetype: 'audio/mpeg', fileLength: 9 } }),
      mediaMessage(FAMILY, {
        videoMessage: { mimetype: 'video/mp4', fileLength: 50 * MB, jpegThumbnail: thumb },
      }),
      mediaMessage(FAMILY, { stickerMessage: { mimetype: 'image/webp', fileLength: 4 } }),
      mediaMessage(FAMILY, {
        documentWithCaptionMessage: {
          message: {
            documentMessage: {
              mimetype: 'application/pdf',
              fileName: 'menu.pdf',
              fileLength: 8,
              caption: 'menu',
            },
          },
        },
      }),
    ];
    const bytes = [
      jpeg,
      Buffer.from('OggS voice'),
      Buffer.from('ID3 mp3 '),
      null,
      Buffer.from('RIFF'),
      Buffer.from('%PDF-1.4'),
    ];
    cases.forEach((c, i) => {
      const b = bytes[i];
      if (b) socket.media.set(c.id, b);
    });
    socket.upsert(cases.map((c) => c.raw));
    await until(() => host.store.messagesSince(FAMILY, 0).length === cases.length, 5000, 'all stored');

    const stored = host.store.messagesSince(FAMILY, 0);
    expect(stored.map((m) => [m.text, m.media?.[0]?.path, m.media?.[0]?.type])).toEqual([
      ['our cat', `media/2026-11-30/${cases[0].id}.jpg`, 'image/jpeg'],
      ['[voice message]', `media/2026-11-30/${cases[1].id}.ogg`, 'audio/ogg; codecs=opus'],
      ['[audio]', `media/2026-11-30/${cases[2].id}.mp3`, 'audio/mpeg'],
      // The video itself is never downloaded (50 MB): its preview stands in for it.
      ['[video]', `media/2026-11-30/${cases[3].id}.jpg`, 'image/jpeg'],
      ['[sticker]', `media/2026-11-30/${cases[4].id}.webp`, 'image/webp'],
      ['menu', `media/2026-11-30/${cases[5].id}.pdf`, 'application/pdf'],
    ]);
    expect(socket.downloads).toEqual([cases[0].id, cases[1].id, cases[2].id, cases[4].id, cases[5].id]);
    const groupDir = path.join(config.paths.groupsDir, 'family');
    expect(fs.readFileSync(path.join(groupDir, stored[0].media![0].path)).equals(jpeg)).toBe(true);
    expect(new Uint8Array(fs.readFileSync(path.join(groupDir, stored[3].media![0].path)))).toEqual(thumb);

    await until(() => runs.runs.length > 0);
    const prompts = runs.runs.map((r) => r.request.prompt).join('\n');
    expect(prompts).toContain(
      `our cat\n<attachment type="image/jpeg" path="media/2026-11-30/${cases[0].id}.jpg"/>`,
    );
    expect(prompts).toContain(
      `menu\n<attachment type="application/pdf" path="media/2026-11-30/${cases[5].id}.pdf"/>`,
    );
  });

  it('refuses a file over the size cap before downloading it, and one past the group quota; the messages stay', async () => {
    const { host, socket } = await start({ maxMediaFileMb: 1, groupMediaQuotaMb: 1 });
    const big = mediaMessage(FAMILY, {
      documentMessage: { mimetype: 'application/zip', fileName: 'backup.zip', fileLength: 3 * MB },
    });
    const fits = mediaMessage(FAMILY, { imageMessage: { mimetype: 'image/jpeg', fileLength: 800 * 1024 } });
    const over = mediaMessage(FAMILY, { imageMessage: { mimetype: 'image/jpeg', fileLength: 800 * 1024 } });
    socket.media.set(big.id, Buffer.alloc(3 * MB));
    socket.media.set(fits.id, Buffer.alloc(800 * 1024, 1));
    socket.media.set(over.id, Buffer.alloc(800 * 1024, 2));
    socket.upsert([big.raw, fits.raw, over.raw]);
    await until(() => host.store.messagesSince(FAMILY, 0).length === 3, 5000, 'all stored');
    const [a, b, c] = host.store.messagesSince(FAMILY, 0);
    expect(a.text).toBe('[document: backup.zip] [note: not stored: 3 MB is over the 1 MB limit per file]');
    expect(a.media).toBeUndefined();
    expect(b.media).toHaveLength(1);
    expect(c.text).toMatch(/^\[image\] \[note: not stored: this chat's media quota of 1 MB is full/);
    expect(c.media).toBeUndefined();
    expect(socket.downloads).toEqual([fits.id]);
  });

  it('send_file goes out as a photo or a document under the name prefix, and its echo is not input', async () => {
    const { host, socket, runs, config } = await start();
    const family = host.store.getGroupByJid(FAMILY)!;
    const groupDir = path.join(config.paths.groupsDir, 'family');
    fs.mkdirSync(groupDir, { recursive: true });
    fs.writeFileSync(path.join(groupDir, 'chart.png'), 'png');
    fs.writeFileSync(path.join(groupDir, 'report.pdf'), '%PDF');
    const ctx = { runId: 'run-1', group: family };
    expect(
      await host.tools.handle(ctx, 'send_file', { path: 'chart.png', caption: 'this week' }),
    ).toMatchObject({ ok: true });
    expect(await host.tools.handle(ctx, 'send_file', { path: 'report.pdf' })).toMatchObject({ ok: true });
    expect(socket.sentFiles).toEqual([
      {
        jid: FAMILY,
        content: {
          image: { url: expect.stringMatching(/chart\.png$/) },
          mimetype: 'image/png',
          caption: 'Andy: this week',
        },
      },
      {
        jid: FAMILY,
        content: {
          document: { url: expect.stringMatching(/report\.pdf$/) },
          mimetype: 'application/pdf',
          fileName: 'report.pdf',
          caption: 'Andy: report.pdf',
        },
      },
    ]);
    // WhatsApp echoes our own sends back as fromMe messages: stored as the assistant's, never fetched or input.
    const echo = mediaMessage(FAMILY, {
      imageMessage: { mimetype: 'image/png', caption: 'Andy: this week' },
    });
    socket.upsert([{ ...echo.raw, key: { ...echo.raw.key, fromMe: true, participant: undefined } }]);
    await host.settled();
    expect(socket.downloads).toEqual([]);
    expect(host.store.messagesSince(FAMILY, 0)).toEqual([]);
    expect(runs.runs).toHaveLength(0);
  });

  it('keeps a message whose download fails, and never downloads for unregistered chats', async () => {
    const { host, socket } = await start();
    const expired = mediaMessage(FAMILY, { imageMessage: { mimetype: 'image/jpeg', caption: 'look' } });
    const foreign = mediaMessage(STRANGER, { imageMessage: { mimetype: 'image/jpeg' } });
    socket.media.set(foreign.id, Buffer.from('x'));
    socket.upsert([expired.raw, foreign.raw]);
    await until(() => host.store.messagesSince(FAMILY, 0).length === 1, 5000, 'stored');
    await host.settled();
    expect(host.store.messagesSince(FAMILY, 0)[0].text).toBe(
      'look\n[image] [note: the image could not be downloaded]',
    );
    expect(socket.downloads).toEqual([expired.id]);
    expect(host.store.listChats().map((c) => c.jid)).toContain(STRANGER);
  });
});
