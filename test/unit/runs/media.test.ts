// The host's media step (issue 13) with a real store, real files and a real HTTP
// transcription server: files land in the group's media folder and on the stored
// message, caps and quotas refuse with a note (the message is kept), voice notes
// are transcribed or fall back to their placeholder, retention removes old days.

import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { silentLogger } from '../../../src/core/logger.js';
import { formatPrompt } from '../../../src/core/prompt.js';
import type { InboundAttachment, InboundMessage, MediaKind } from '../../../src/core/types.js';
import { MediaIngest, pruneMedia } from '../../../src/runs/media.js';
import { openAiCompatibleTranscriber, type Transcriber } from '../../../src/runs/transcribe.js';
import { buildTestHost } from '../../support/test-host.js';
import { group, message, tempDir, tempStore } from '../store/helpers.js';

const MB = 1024 * 1024;

function bytesAttachment(kind: MediaKind, type: string, bytes: Buffer, declare = true): InboundAttachment {
  return {
    kind,
    type,
    ...(declare ? { declaredBytes: bytes.length } : {}),
    open: async () =>
      (async function* () {
        // Several chunks, as a download delivers them.
        for (let at = 0; at < bytes.length; at += 64 * 1024) yield bytes.subarray(at, at + 64 * 1024);
      })(),
  };
}

function setUp(
  options: { maxFileBytes?: number; groupQuotaBytes?: number; transcriber?: Transcriber | null } = {},
) {
  const { store } = tempStore();
  const groupsDir = tempDir();
  store.addGroup(group({ jid: 'family@g.us', folder: 'family', requiresTrigger: false }));
  const delivered: InboundMessage[] = [];
  const ingest = new MediaIngest({
    groupsDir,
    groupFolderOf: (jid) => store.getGroupByJid(jid)?.folder,
    maxFileBytes: options.maxFileBytes ?? 4 * MB,
    groupQuotaBytes: options.groupQuotaBytes ?? 64 * MB,
    transcriber: options.transcriber ?? null,
    logger: silentLogger(),
    deliver: (m) => {
      delivered.push(m);
      store.insertMessage(m);
    },
  });
  return { store, groupsDir, ingest, delivered };
}

/** A real HTTP server answering `/v1/audio/transcriptions` (multipart) like OpenAI does. */
async function fakeSpeechServer(answer: (body: Buffer) => { status: number; json?: unknown }) {
  const requests: Array<{ url: string; auth: string | undefined; contentType: string; body: Buffer }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({
        url: req.url ?? '',
        auth: req.headers.authorization,
        contentType: req.headers['content-type'] ?? '',
        body,
      });
      const { status, json } = answer(body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe('inbound media', () => {
  it('stores an image under media/<date>/<id>.<ext> and records path, type and size on the message', async () => {
    const { store, groupsDir, ingest } = setUp();
    const image = Buffer.alloc(300 * 1024, 7);
    ingest.accept(
      message({
        id: 'ABC/1',
        text: 'look at this',
        timestamp: '2026-11-30T10:00:00.000Z',
        attachments: [bytesAttachment('image', 'image/jpeg', image)],
      }),
    );
    await ingest.idle();
    const [stored] = store.messagesSince('family@g.us', 0);
    expect(stored.text).toBe('look at this');
    expect(stored.media).toEqual([
      { path: 'media/2026-11-30/ABC_1.jpg', type: 'image/jpeg', sizeBytes: image.length },
    ]);
    expect(fs.readFileSync(path.join(groupsDir, 'family', 'media/2026-11-30/ABC_1.jpg')).equals(image)).toBe(
      true,
    );
    expect(formatPrompt([stored])).toContain(
      '>look at this\n<attachment type="image/jpeg" path="media/2026-11-30/ABC_1.jpg"/></message>',
    );
  });

  it('keeps per-chat order: a text sent after a photo is stored after it', async () => {
    const { store, ingest } = setUp();
    ingest.accept(
      message({
        id: 'p',
        text: '',
        attachments: [bytesAttachment('image', 'image/png', Buffer.alloc(200_000))],
      }),
    );
    ingest.accept(message({ id: 't', text: 'and this is the text after' }));
    await ingest.idle();
    expect(store.messagesSince('family@g.us', 0).map((m) => [m.id, m.text])).toEqual([
      ['p', '[image]'],
      ['t', 'and this is the text after'],
    ]);
  });

  it('refuses a file over the per-file cap (announced or streamed) and keeps the message with a note', async () => {
    const { store, groupsDir, ingest } = setUp({ maxFileBytes: MB });
    const big = Buffer.alloc(2 * MB);
    ingest.accept(message({ id: 'a', text: '', attachments: [bytesAttachment('video', 'video/mp4', big)] }));
    ingest.accept(
      message({
        id: 'b',
        text: 'my doc',
        attachments: [bytesAttachment('document', 'application/pdf', big, false)],
      }),
    );
    await ingest.idle();
    const [a, b] = store.messagesSince('family@g.us', 0);
    expect(a.text).toBe('[video] [note: not stored: 2 MB is over the 1 MB limit per file]');
    expect(a.media).toBeUndefined();
    expect(b.text).toBe('my doc\n[document] [note: not stored: the file is over the 1 MB limit per file]');
    expect(
      fs.existsSync(path.join(groupsDir, 'family', 'media'))
        ? fs
            .readdirSync(path.join(groupsDir, 'family', 'media'), { recursive: true })
            .filter((f) => String(f).includes('.'))
        : [],
    ).toEqual([]);
  });

  it("refuses a file once the group's media quota is used up", async () => {
    const { store, ingest } = setUp({ maxFileBytes: MB, groupQuotaBytes: MB });
    ingest.accept(
      message({
        id: 'one',
        text: '',
        attachments: [bytesAttachment('image', 'image/jpeg', Buffer.alloc(700 * 1024, 1))],
      }),
    );
    ingest.accept(
      message({
        id: 'two',
        text: '',
        attachments: [bytesAttachment('image', 'image/jpeg', Buffer.alloc(700 * 1024, 2))],
      }),
    );
    await ingest.idle();
    const [one, two] = store.messagesSince('family@g.us', 0);
    expect(one.media).toHaveLength(1);
    expect(two.media).toBeUndefined();
    expect(two.text).toMatch(
      /^\[image\] \[note: not stored: this chat's media quota of 1 MB is full; ask the owner to raise groupMediaQuotaMb/,
    );
  });

  it('keeps the message when the download fails', async () => {
    const { store, ingest } = setUp();
    const failing: InboundAttachment = {
      kind: 'sticker',
      type: 'image/webp',
      open: async () => {
        throw new Error('media key expired');
      },
    };
    ingest.accept(message({ id: 's', text: '', attachments: [failing] }));
    await ingest.idle();
    expect(store.messagesSince('family@g.us', 0)[0].text).toBe(
      '[sticker] [note: the sticker could not be downloaded]',
    );
  });

  it('gives up a download that stops sending, and the chat goes on', async () => {
    const { store } = tempStore();
    const groupsDir = tempDir();
    store.addGroup(group({ jid: 'family@g.us', folder: 'family', requiresTrigger: false }));
    const ingest = new MediaIngest({
      groupsDir,
      groupFolderOf: (jid) => store.getGroupByJid(jid)?.folder,
      maxFileBytes: MB,
      groupQuotaBytes: 64 * MB,
      transcriber: null,
      logger: silentLogger(),
      deliver: (m) => void store.insertMessage(m),
      downloadTimeoutMs: 300,
    });
    let stopped = false;
    const stalled: InboundAttachment = {
      kind: 'document',
      type: 'application/pdf',
      fileName: 'big.pdf',
      open: async () => ({
        [Symbol.asyncIterator]: () => {
          let sent = false;
          return {
            next: () =>
              sent
                ? new Promise<IteratorResult<Uint8Array>>(() => undefined)
                : ((sent = true), Promise.resolve({ done: false, value: new Uint8Array(10) })),
            return: async () => {
              stopped = true;
              return { done: true, value: undefined };
            },
          };
        },
      }),
    };
    ingest.accept(message({ id: 'd', text: '', attachments: [stalled] }));
    ingest.accept(message({ id: 't', text: 'after the stalled file' }));
    await ingest.idle();
    expect(store.messagesSince('family@g.us', 0).map((m) => m.text)).toEqual([
      '[document: big.pdf] [note: the document big.pdf could not be downloaded]',
      'after the stalled file',
    ]);
    expect(stopped).toBe(true);
    expect(fs.readdirSync(path.join(groupsDir, 'family', 'media', '2025-03-01'))).toEqual([]);
  });

  it('transcribes a voice note through an OpenAI-compatible endpoint (multipart, key on the host)', async () => {
    const speech = await fakeSpeechServer(() => ({ status: 200, json: { text: ' buy milk and bread ' } }));
    const transcriber = openAiCompatibleTranscriber({
      baseUrl: speech.url,
      model: 'whisper-1',
      apiKey: 'sk-speech',
      timeoutMs: 5000,
    });
    const { store, groupsDir, ingest } = setUp({ transcriber });
    const audio = Buffer.from('OggS fake opus bytes');
    ingest.accept(
      message({
        id: 'v',
        text: '',
        timestamp: '2026-11-30T10:00:00.000Z',
        attachments: [bytesAttachment('voice', 'audio/ogg; codecs=opus', audio)],
      }),
    );
    await ingest.idle();
    const [stored] = store.messagesSince('family@g.us', 0);
    expect(stored.text).toBe('[voice message, transcribed] buy milk and bread');
    expect(stored.media?.[0].path).toBe('media/2026-11-30/v.ogg');
    expect(fs.existsSync(path.join(groupsDir, 'family', 'media/2026-11-30/v.ogg'))).toBe(true);
    const [request] = speech.requests;
    expect(request.url).toBe('/v1/audio/transcriptions');
    expect(request.auth).toBe('Bearer sk-speech');
    expect(request.contentType).toMatch(/^multipart\/form-data; boundary=/);
    const body = request.body.toString('latin1');
    expect(body).toContain('name="model"\r\n\r\nwhisper-1');
    expect(body).toContain('filename="v.ogg"');
    expect(body).toContain('OggS fake opus bytes');
  });

  it('falls back to the placeholder and keeps the file when the speech service fails or is down', async () => {
    const speech = await fakeSpeechServer(() => ({ status: 503, json: { error: 'overloaded' } }));
    const failing = openAiCompatibleTranscriber({
      baseUrl: speech.url,
      model: 'whisper-1',
      apiKey: null,
      timeoutMs: 5000,
    });
    const down = openAiCompatibleTranscriber({
      baseUrl: 'http://127.0.0.1:9',
      model: 'whisper-1',
      apiKey: null,
      timeoutMs: 5000,
    });
    for (const transcriber of [failing, down]) {
      const { store, ingest } = setUp({ transcriber });
      ingest.accept(
        message({
          id: 'v',
          text: '',
          attachments: [bytesAttachment('voice', 'audio/ogg', Buffer.from('OggS'))],
        }),
      );
      await ingest.idle();
      const [stored] = store.messagesSince('family@g.us', 0);
      expect(stored.text).toBe('[voice message]');
      expect(stored.media).toHaveLength(1);
    }
    expect(speech.requests).toHaveLength(1);
  });

  it('does not fetch files of chats that are not registered groups', async () => {
    const { ingest, delivered } = setUp();
    let opened = false;
    const attachment: InboundAttachment = {
      kind: 'image',
      type: 'image/jpeg',
      open: async () => {
        opened = true;
        return (async function* () {})();
      },
    };
    ingest.accept(message({ chatJid: 'stranger@s.whatsapp.net', text: '', attachments: [attachment] }));
    await ingest.idle();
    expect(opened).toBe(false);
    expect(delivered[0]).toMatchObject({ text: '[image]' });
    expect(delivered[0].attachments).toBeUndefined();
  });

  it('retention deletes day folders older than the cutoff, in every group', () => {
    const groupsDir = tempDir();
    for (const day of ['2026-08-30', '2026-08-31', '2026-09-01']) {
      fs.mkdirSync(path.join(groupsDir, 'family', 'media', day), { recursive: true });
      fs.writeFileSync(path.join(groupsDir, 'family', 'media', day, 'x.jpg'), 'x');
    }
    fs.mkdirSync(path.join(groupsDir, 'main', 'media', '2026-08-01'), { recursive: true });
    fs.mkdirSync(path.join(groupsDir, 'main', 'media', 'keep-me'), { recursive: true });
    expect(pruneMedia(groupsDir, Date.parse('2026-09-01T10:00:00Z'))).toBe(3);
    expect(fs.readdirSync(path.join(groupsDir, 'family', 'media'))).toEqual(['2026-09-01']);
    expect(fs.readdirSync(path.join(groupsDir, 'main', 'media'))).toEqual(['keep-me']);
  });
});

describe('retention through the host', () => {
  it('deletes media and send_file copies whose day is past messageRetentionDays when the host starts', async () => {
    const dir = tempDir();
    const nowMs = Date.parse('2026-11-30T12:00:00Z');
    const old = path.join(dir, 'groups', 'family', 'media', '2026-08-01');
    const recent = path.join(dir, 'groups', 'family', 'media', '2026-11-29');
    const oldSpool = path.join(dir, 'data', 'outbox-files', '2026-08-01', 'id');
    for (const d of [old, recent, oldSpool]) {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'x.jpg'), 'x');
    }
    const t = buildTestHost({ dir, now: () => nowMs, config: { messageRetentionDays: 30 } });
    await t.host.start();
    await t.cleanup();
    expect(fs.existsSync(old)).toBe(false);
    expect(fs.existsSync(oldSpool)).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'groups', 'family', 'media'))).toEqual(['2026-11-29']);
  });
});

describe('crash during a download', () => {
  it('stores what the previous host accepted but never stored, at the next start, in order and once', async () => {
    const { store } = tempStore();
    const groupsDir = tempDir();
    const journalDir = path.join(tempDir(), 'media-pending');
    store.addGroup(group({ jid: 'family@g.us', folder: 'family', requiresTrigger: false }));
    const options = {
      groupsDir,
      groupFolderOf: (jid: string) => store.getGroupByJid(jid)?.folder,
      maxFileBytes: MB,
      groupQuotaBytes: 64 * MB,
      transcriber: null,
      logger: silentLogger(),
      deliver: (m: InboundMessage) => void store.insertMessage(m),
      journalDir,
    };
    // The first host: a photo whose download never ends, and a text queued behind it. Then it "dies".
    const dying = new MediaIngest(options);
    const hanging: InboundAttachment = {
      kind: 'image',
      type: 'image/jpeg',
      open: () => new Promise<AsyncIterable<Uint8Array>>(() => undefined),
    };
    dying.accept(message({ id: 'photo', text: 'our new car', attachments: [hanging] }));
    dying.accept(message({ id: 'text', text: 'what do you think?' }));
    expect(store.messagesSince('family@g.us', 0)).toEqual([]);
    expect(fs.readdirSync(journalDir)).toHaveLength(2);

    const next = new MediaIngest(options);
    expect(next.recover()).toBe(2);
    expect(next.recover()).toBe(0);
    expect(store.messagesSince('family@g.us', 0).map((m) => [m.id, m.text])).toEqual([
      [
        'photo',
        'our new car\n[note: the host restarted before this file was stored; ask the sender to send it again]',
      ],
      ['text', 'what do you think?'],
    ]);
    expect(fs.readdirSync(journalDir)).toEqual([]);
  });

  it('leaves no journal behind once messages are stored', async () => {
    const { store } = tempStore();
    const journalDir = path.join(tempDir(), 'media-pending');
    store.addGroup(group({ jid: 'family@g.us', folder: 'family', requiresTrigger: false }));
    const ingest = new MediaIngest({
      groupsDir: tempDir(),
      groupFolderOf: (jid) => store.getGroupByJid(jid)?.folder,
      maxFileBytes: MB,
      groupQuotaBytes: 64 * MB,
      transcriber: null,
      logger: silentLogger(),
      deliver: (m) => void store.insertMessage(m),
      journalDir,
    });
    ingest.accept(
      message({ id: 'p', text: '', attachments: [bytesAttachment('image', 'image/png', Buffer.alloc(10))] }),
    );
    await ingest.idle();
    expect(store.messagesSince('family@g.us', 0)).toHaveLength(1);
    expect(fs.readdirSync(journalDir)).toEqual([]);
  });

  it('keeps the journal of a message the store could not take, and the next start stores it', async () => {
    const { store } = tempStore();
    const journalDir = path.join(tempDir(), 'media-pending');
    store.addGroup(group({ jid: 'family@g.us', folder: 'family', requiresTrigger: false }));
    const options = {
      groupsDir: tempDir(),
      groupFolderOf: (jid: string) => store.getGroupByJid(jid)?.folder,
      maxFileBytes: MB,
      groupQuotaBytes: 64 * MB,
      transcriber: null,
      logger: silentLogger(),
      journalDir,
    };
    // The host closed its store while the download finished: delivery throws.
    const closing = new MediaIngest({
      ...options,
      deliver: () => {
        throw new Error('the database connection is not open');
      },
    });
    closing.accept(
      message({
        id: 'late',
        text: '',
        attachments: [bytesAttachment('image', 'image/png', Buffer.alloc(10))],
      }),
    );
    await closing.idle();
    expect(fs.readdirSync(journalDir)).toHaveLength(1);

    const next = new MediaIngest({ ...options, deliver: (m) => void store.insertMessage(m) });
    expect(next.recover()).toBe(1);
    expect(store.messagesSince('family@g.us', 0).map((m) => m.id)).toEqual(['late']);
    expect(fs.readdirSync(journalDir)).toEqual([]);
  });
});
