// The lite engine's OpenAI-compatible provider: a Messages-shaped history
// translated into chat completions (tool calls, tool results, images), and the
// streamed answer of the scripted fake (speaking chat completions on a unix
// socket, as the broker does) folded back, with usage.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { streamWithRetry, type MessagesRequest } from '../../../runner/lite/messages-api.js';
import { ChatReplyBuilder, streamChatCompletion, toChatRequest } from '../../../runner/lite/openai-api.js';
import { startFakeModelServer, type FakeModelServer } from '../../support/fake-model-server.js';

let dir: string;
let fake: FakeModelServer | undefined;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lite-openai-'));
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const history: MessagesRequest = {
  model: 'qwen2.5:7b',
  max_tokens: 512,
  system: [{ type: 'text', text: 'You are Andy.' }],
  tools: [{ name: 'bash', description: 'run', input_schema: { type: 'object', properties: {} } }],
  messages: [
    { role: 'user', content: [{ type: 'text', text: 'list files' }] },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: 'looking' },
        { type: 'tool_use', id: 'call_1', name: 'bash', input: { command: 'ls' } },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'call_1', content: 'a.txt', is_error: true },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
      ],
    },
  ],
};

describe('toChatRequest', () => {
  it('turns system, tool calls, tool results and images into chat messages', () => {
    const chat = toChatRequest(history);
    expect(chat.messages).toEqual([
      { role: 'system', content: 'You are Andy.' },
      { role: 'user', content: 'list files' },
      {
        role: 'assistant',
        content: 'looking',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'bash', arguments: '{"command":"ls"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'ERROR: a.txt' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
    ]);
    expect(chat.tools).toEqual([
      {
        type: 'function',
        function: { name: 'bash', description: 'run', parameters: { type: 'object', properties: {} } },
      },
    ]);
    expect(chat).toMatchObject({ stream: true, stream_options: { include_usage: true }, max_tokens: 512 });
  });
});

describe('streamChatCompletion through the fake provider', () => {
  it('folds a streamed tool call and its usage into a tool_use reply, with the placeholder as bearer', async () => {
    const socketPath = path.join(dir, 'model.sock');
    fake = await startFakeModelServer({
      script: [
        {
          toolUse: { name: 'bash', input: { command: 'ls -la' } },
          usage: { input_tokens: 42, output_tokens: 7 },
        },
        { text: 'all done' },
      ],
      listen: { socketPath },
    });
    const endpoint = { socketPath, apiKey: 'ph-run-key' };
    const deps = { send: streamChatCompletion, sleep: async () => undefined };
    const first = await streamWithRetry(endpoint, history, deps);
    expect(first.stopReason).toBe('tool_use');
    expect(first.content).toEqual([
      { type: 'tool_use', id: expect.stringMatching(/^call_/), name: 'bash', input: { command: 'ls -la' } },
    ]);
    expect(first.usage).toEqual({ input_tokens: 42, output_tokens: 7 });
    const second = await streamWithRetry(endpoint, history, deps);
    expect(second).toMatchObject({ stopReason: 'end_turn', content: [{ type: 'text', text: 'all done' }] });
    const sent = fake.requests[0];
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe('Bearer ph-run-key');
    expect(fake.conversationRequests()).toHaveLength(2);
  });

  it('retries an overloaded provider and keeps broken tool arguments for the tool to refuse', async () => {
    const socketPath = path.join(dir, 'model.sock');
    fake = await startFakeModelServer({
      script: [{ error: { status: 503, type: 'overloaded', message: 'loading model' } }, { text: 'up' }],
      listen: { socketPath },
    });
    const delays: number[] = [];
    const reply = await streamWithRetry({ socketPath, apiKey: 'k' }, history, {
      send: streamChatCompletion,
      sleep: async (ms) => void delays.push(ms),
    });
    expect(reply.content).toEqual([{ type: 'text', text: 'up' }]);
    expect(delays).toEqual([1000]);

    const builder = new ChatReplyBuilder();
    builder.apply(
      JSON.stringify({
        choices: [
          { delta: { tool_calls: [{ index: 0, id: 'c1', function: { name: 'bash', arguments: '{"com' } }] } },
        ],
      }),
    );
    builder.apply(JSON.stringify({ choices: [{ delta: {}, finish_reason: 'tool_calls' }] }));
    builder.apply('[DONE]');
    expect(builder.finish().content).toEqual([
      { type: 'tool_use', id: 'c1', name: 'bash', input: { unparsed_arguments: '{"com' } },
    ]);
  });
});
