// The local JSON channel's attachments (issue 13): `"attachments": [{"path","type"?}]`
// becomes InboundAttachments the host can open (type guessed from the name when
// absent, relative paths from the console's working directory), `text` may be
// left out, and a bad list or a missing file is refused with what to do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LocalChannel } from '../../../src/channels/local/local-channel.js';
import type { InboundMessage } from '../../../src/core/types.js';

async function received(
  lines: string[],
  cwd: string,
): Promise<{ messages: InboundMessage[]; errors: string }> {
  const input = new PassThrough();
  const errors = new PassThrough();
  let errorText = '';
  errors.on('data', (d: Buffer) => (errorText += d.toString()));
  const messages: InboundMessage[] = [];
  let ended!: () => void;
  const inputEnded = new Promise<void>((resolve) => (ended = resolve));
  const channel = new LocalChannel({
    console: { input, output: new PassThrough(), errors, json: true, onInputEnd: ended, cwd },
    assistantName: 'Andy',
    events: {
      onMessage: (m) => void messages.push(m),
      onChatMetadata: () => undefined,
      onConnectionChange: () => undefined,
    },
    isRegistered: () => false,
    now: () => Date.parse('2026-11-30T12:00:00Z'),
  });
  await channel.connect();
  input.end(lines.map((l) => `${l}\n`).join(''));
  await inputEnded;
  await channel.disconnect();
  return { messages, errors: errorText };
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString();
}

describe('local channel attachments', () => {
  it('turns attachments into files the host can open, with types from the name or as given', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-local-att-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'cat.JPG'), 'jpeg bytes');
    fs.writeFileSync(path.join(dir, 'note.ogg'), 'ogg bytes');
    const { messages, errors } = await received(
      [
        JSON.stringify({ text: 'look', attachments: [{ path: 'cat.JPG' }] }),
        JSON.stringify({
          attachments: [{ path: path.join(dir, 'note.ogg'), type: 'audio/ogg; codecs=opus' }],
        }),
      ],
      dir,
    );
    expect(errors).toBe('');
    expect(
      messages.map((m) => [m.text, m.attachments?.map((a) => [a.kind, a.type, a.declaredBytes, a.fileName])]),
    ).toEqual([
      ['look', [['image', 'image/jpeg', 10, 'cat.JPG']]],
      ['', [['audio', 'audio/ogg; codecs=opus', 9, 'note.ogg']]],
    ]);
    expect(await readAll(await messages[0].attachments![0].open())).toBe('jpeg bytes');
  });

  it('refuses a bad attachment list or a missing file, saying what to do', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-local-att-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { messages, errors } = await received(
      [
        JSON.stringify({ text: 'x', attachments: 'cat.jpg' }),
        JSON.stringify({ text: 'x', attachments: [{ file: 'cat.jpg' }] }),
        JSON.stringify({ text: 'x', attachments: [{ path: 'missing.jpg' }] }),
        JSON.stringify({ text: 'x', attachments: [{ path: '.' }] }),
        JSON.stringify({ attachments: [] }),
      ],
      dir,
    );
    expect(messages).toEqual([]);
    expect(errors.trim().split('\n')).toEqual([
      'nanoclaw chat: input line ignored: field "attachments" must be a list like [{"path": "photo.jpg", "type": "image/jpeg"}]',
      'nanoclaw chat: input line ignored: field "attachments" must be a list like [{"path": "photo.jpg", "type": "image/jpeg"}]',
      'nanoclaw chat: input line ignored: attachment "missing.jpg" cannot be read: check the path',
      'nanoclaw chat: input line ignored: attachment "." is not a regular file',
      'nanoclaw chat: input line ignored: field "text" must be a string, e.g. {"text": "hello"}',
    ]);
  });
});
