// What a console prints when the assistant sends a file or a message: the JSON line a
// script reads, or the plain line a person reads (with the chat named unless it is main's).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCAL_MAIN_JID, LocalChannel } from '../../../src/channels/local/local-channel.js';

let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function printed(json: boolean, send: (channel: LocalChannel, file: string) => Promise<void>) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-local-files-'));
  const file = path.join(dir, 'chart.png');
  fs.writeFileSync(file, 'png');
  const output = new PassThrough();
  let text = '';
  output.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const channel = new LocalChannel({
    console: {
      input: new PassThrough(),
      output,
      errors: new PassThrough(),
      json,
      onInputEnd: () => undefined,
    },
    assistantName: 'Andy',
    events: {
      onMessage: () => undefined,
      onChatMetadata: () => undefined,
      onConnectionChange: () => undefined,
    },
    isRegistered: () => true,
    now: () => 1_700_000_000_000,
  });
  await channel.connect();
  await send(channel, file);
  return { lines: text.split('\n').filter(Boolean), file };
}

describe('local channel output lines', () => {
  it('prints files and messages as JSON lines, with the caption and delivery id only when there are some', async () => {
    const { lines, file } = await printed(true, async (channel, f) => {
      await channel.sendFile(
        'local:work',
        { path: f, type: 'image/png', caption: 'the chart' },
        { outboxId: 7 },
      );
      await channel.sendFile('local:work', { path: f, type: 'image/png', caption: '' });
      await channel.sendMessage('local:work', 'done', { outboxId: 8 });
    });
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { chat: 'local:work', file, caption: 'the chart', id: 7 },
      { chat: 'local:work', file },
      { chat: 'local:work', text: 'done', id: 8 },
    ]);
  });

  it('prints plain lines for a person, naming the chat unless it is main', async () => {
    const { lines, file } = await printed(false, async (channel, f) => {
      await channel.sendFile(LOCAL_MAIN_JID, { path: f, type: 'image/png', caption: 'the chart' });
      await channel.sendFile('local:work', { path: f, type: 'image/png', caption: '' });
      await channel.sendMessage('local:work', 'done');
      await channel.sendMessage(LOCAL_MAIN_JID, 'hi');
    });
    expect(lines).toEqual([
      `Andy sent a file: ${file} (the chart)`,
      `[local:work] Andy sent a file: ${file}`,
      '[local:work] Andy: done',
      'Andy: hi',
    ]);
  });
});
