// The local channel's JSON ids and replyTo: what a scripted line becomes, and how bad ones are refused.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LocalChannel } from '../../../src/channels/local/local-channel.js';
import type { InboundMessage } from '../../../src/core/types.js';

async function feed(lines: string[]): Promise<{ messages: InboundMessage[]; errors: string }> {
  const input = new PassThrough();
  const errors = new PassThrough();
  let errorText = '';
  errors.on('data', (chunk: Buffer) => (errorText += chunk.toString()));
  const messages: InboundMessage[] = [];
  const ended = new Promise<void>((resolve) => {
    const channel = new LocalChannel({
      console: { input, output: new PassThrough(), errors, json: true, onInputEnd: resolve },
      assistantName: 'Andy',
      events: {
        onMessage: (m) => messages.push(m),
        onChatMetadata: () => undefined,
        onConnectionChange: () => undefined,
      },
      isRegistered: () => true,
      now: () => 1_700_000_000_000,
    });
    void channel.connect();
  });
  input.end(lines.map((l) => `${l}\n`).join(''));
  await ended;
  return { messages, errors: errorText };
}

describe('local channel JSON input: message ids and replies', () => {
  it('takes a caller-chosen id and passes replyTo on as the quoted id', async () => {
    const { messages, errors } = await feed([
      '{"text": "dinner at 8?", "id": "q1", "sender": "ann"}',
      '{"text": "yes", "replyTo": "q1", "sender": "bo"}',
    ]);
    expect(errors).toBe('');
    expect(messages.map((m) => [m.id, m.text, m.replyTo])).toEqual([
      ['q1', 'dinner at 8?', undefined],
      [expect.stringMatching(/^local-/), 'yes', { id: 'q1' }],
    ]);
  });

  it('refuses a bad id or replyTo with a message that shows a valid line', async () => {
    const { messages, errors } = await feed([
      '{"text": "x", "id": 5}',
      '{"text": "x", "id": "local-1"}',
      '{"text": "x", "replyTo": ""}',
    ]);
    expect(messages).toEqual([]);
    expect(errors.split('\n').filter(Boolean)).toEqual([
      expect.stringContaining(
        'field "id" must be a non-empty string not starting with "local-", e.g. {"text": "hi", "id": "q1"}',
      ),
      expect.stringContaining('field "id"'),
      expect.stringContaining(
        'field "replyTo" must be the id of an earlier message, e.g. {"text": "yes", "replyTo": "q1"}',
      ),
    ]);
  });
});
