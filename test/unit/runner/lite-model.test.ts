// The lite engine's model client against the scripted fake model on a unix
// socket (as the broker's model.sock): streamed text and tool_use, retries with
// backoff on overload, no retry on a request error; the SSE parser on split
// chunks; the session file and its repair after a run killed mid-turn.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completeTurns } from '../../../runner/engine-lite.js';
import {
  SUMMARY_OPEN,
  contextTokens,
  historyTurns,
  shouldCompact,
  withSummary,
} from '../../../runner/lite/compaction.js';
import {
  ModelApiError,
  ReplyBuilder,
  streamWithRetry,
  withCacheControl,
  type MessagesRequest,
} from '../../../runner/lite/messages-api.js';
import { loadSession, newSessionId, saveSession } from '../../../runner/lite/session.js';
import { SseParser, type SseEvent } from '../../../runner/lite/sse.js';
import { startFakeModelServer, type FakeModelServer } from '../../support/fake-model-server.js';

let dir: string;
let fake: FakeModelServer | undefined;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lite-model-'));
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const request: MessagesRequest = {
  model: 'claude-test',
  max_tokens: 100,
  system: [{ type: 'text', text: 'sys' }],
  tools: [{ name: 'bash', description: 'd', input_schema: { type: 'object' } }],
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
};

async function startFake(script: Parameters<typeof startFakeModelServer>[0]['script']): Promise<string> {
  const socketPath = path.join(dir, 'model.sock');
  fake = await startFakeModelServer({ script, listen: { socketPath } });
  return socketPath;
}

describe('streamWithRetry', () => {
  it('folds a streamed tool_use and its usage into one reply, with the key and cache marks sent', async () => {
    const socketPath = await startFake([
      {
        toolUse: { name: 'bash', input: { command: 'ls -la' } },
        text: 'let me look',
        usage: { input_tokens: 7 },
      },
    ]);
    const delays: number[] = [];
    const reply = await streamWithRetry({ socketPath, apiKey: 'ph' }, request, {
      sleep: async (ms) => void delays.push(ms),
    });
    expect(reply.stopReason).toBe('tool_use');
    expect(reply.content).toMatchObject([
      { type: 'text', text: 'let me look' },
      { type: 'tool_use', name: 'bash', input: { command: 'ls -la' } },
    ]);
    expect(reply.usage).toMatchObject({ input_tokens: 7, output_tokens: 20 });
    expect(delays).toEqual([]);
    const sent = fake!.requests[0];
    expect(sent.headers['x-api-key']).toBe('ph');
    expect(sent.body).toMatchObject({ stream: true, system: [{ cache_control: { type: 'ephemeral' } }] });
    // The caller's request is left as it was.
    expect(request.system[0]).not.toHaveProperty('cache_control');
  });

  it('retries overload and rate limits with growing backoff, honouring retry-after', async () => {
    const socketPath = await startFake([
      { error: { status: 529, type: 'overloaded_error', message: 'busy' } },
      { error: { status: 429, type: 'rate_limit_error', message: 'slow', headers: { 'retry-after': '7' } } },
      { error: { status: 500, type: 'api_error', message: 'oops' } },
      { text: 'finally' },
    ]);
    const delays: number[] = [];
    const reply = await streamWithRetry({ socketPath, apiKey: 'ph' }, request, {
      sleep: async (ms) => void delays.push(ms),
    });
    expect(reply.content).toEqual([{ type: 'text', text: 'finally' }]);
    expect(delays).toEqual([1000, 7000, 4000]);
  });

  it('does not retry a request error, and gives up after the attempts allowed', async () => {
    const badSocket = await startFake([
      { error: { status: 400, type: 'invalid_request_error', message: 'bad tools' } },
    ]);
    const err = await streamWithRetry({ socketPath: badSocket, apiKey: 'ph' }, request, {
      sleep: async () => undefined,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelApiError);
    expect((err as ModelApiError).message).toBe(
      'model request failed (HTTP 400): invalid_request_error: bad tools',
    );

    const missing = path.join(dir, 'nothing.sock');
    let attempts = 0;
    const gone = await streamWithRetry({ socketPath: missing, apiKey: 'ph' }, request, {
      sleep: async () => void attempts++,
      policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
    }).catch((e: unknown) => e);
    expect((gone as ModelApiError).message).toMatch(/^model unreachable/);
    expect(attempts).toBe(2);
  });
});

it('withCacheControl marks the end of system, tools and the conversation prefix', () => {
  const marked = withCacheControl({
    ...request,
    messages: [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: [{ type: 'text', text: 'a' }] },
      { role: 'user', content: 'second' },
    ],
  });
  expect(marked.tools[0].cache_control).toEqual({ type: 'ephemeral' });
  expect(marked.messages[0].content).toBe('first');
  expect(marked.messages[2].content).toEqual([
    { type: 'text', text: 'second', cache_control: { type: 'ephemeral' } },
  ]);
});

it('SseParser joins events split across chunks at any byte', () => {
  const stream = Buffer.from(
    'event: a\ndata: {"x":"é"}\n\n: comment\r\nevent: b\r\ndata: 1\r\ndata: 2\r\n\r\nevent: c\ndata: end',
  );
  for (let cut = 1; cut < stream.length; cut += 3) {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.push(stream.subarray(0, cut));
    parser.push(stream.subarray(cut));
    parser.end();
    expect(events).toEqual([
      { event: 'a', data: '{"x":"é"}' },
      { event: 'b', data: '1\n2' },
      { event: 'c', data: 'end' },
    ]);
  }
});

describe('session', () => {
  it('round-trips through its file and refuses ids that are not its own', () => {
    const id = newSessionId();
    saveSession(dir, { id, messages: [{ role: 'user', content: 'x' }] });
    expect(loadSession(dir, id)).toEqual({ id, messages: [{ role: 'user', content: 'x' }] });
    expect(fs.readdirSync(path.join(dir, '.claude', 'lite'))).toEqual([`${id}.json`]);
    expect(loadSession(dir, '../../etc/passwd')).toBeUndefined();
    expect(loadSession(dir, newSessionId())).toBeUndefined();
  });

  it('completeTurns drops an unfinished turn', () => {
    const done = [
      { role: 'user' as const, content: 'q1' },
      { role: 'assistant' as const, content: [{ type: 'tool_use', id: 't', name: 'bash', input: {} }] },
      { role: 'user' as const, content: [{ type: 'tool_result', tool_use_id: 't', content: 'ok' }] },
      { role: 'assistant' as const, content: [{ type: 'text', text: 'a1' }] },
    ];
    const unfinished = [
      ...done,
      { role: 'user' as const, content: 'q2' },
      { role: 'assistant' as const, content: [{ type: 'tool_use', id: 'u', name: 'bash', input: {} }] },
    ];
    expect(completeTurns(unfinished)).toEqual(done);
    expect(completeTurns(done)).toEqual(done);
    expect(completeTurns([{ role: 'user', content: 'q' }])).toEqual([]);
  });
});

describe('compaction helpers', () => {
  it('decides by the last context size against the configured fraction', () => {
    const policy = { windowTokens: 10_000, atFraction: 0.8 };
    expect(
      contextTokens({
        input_tokens: 10,
        output_tokens: 5,
        cache_read_input_tokens: 7900,
        cache_creation_input_tokens: 85,
      }),
    ).toBe(8000);
    expect(shouldCompact(8000, policy)).toBe(true);
    expect(shouldCompact(7999, policy)).toBe(false);
    expect(shouldCompact(undefined, policy)).toBe(false);
    expect(shouldCompact(9999, undefined)).toBe(false);
  });

  it('puts the summary before the current prompt, and the archive marks it as a summary', () => {
    const kept = withSummary('earlier: A', [{ role: 'user', content: 'now B' }]);
    expect(kept).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: `${SUMMARY_OPEN}\nearlier: A\n</summary_of_earlier_conversation>` },
          { type: 'text', text: 'now B' },
        ],
      },
    ]);
    expect(
      historyTurns([
        ...kept,
        { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'bash', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'secret output' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'done' }] },
      ]),
    ).toEqual([
      { role: 'user', text: '_(summary of the earlier conversation)_\n\nearlier: A\n\nnow B' },
      { role: 'assistant', text: '_(used tool bash)_' },
      { role: 'assistant', text: 'done' },
    ]);
  });
});

it('ReplyBuilder drops a tool call cut off by max_tokens and keeps the text before it', () => {
  const reply = new ReplyBuilder();
  const events: Array<[string, object]> = [
    ['message_start', { message: { usage: { input_tokens: 3, output_tokens: 1 } } }],
    ['content_block_start', { index: 0, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'writing ' } }],
    ['content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'now' } }],
    ['content_block_stop', { index: 0 }],
    [
      'content_block_start',
      { index: 1, content_block: { type: 'tool_use', id: 't1', name: 'write', input: {} } },
    ],
    [
      'content_block_delta',
      { index: 1, delta: { type: 'input_json_delta', partial_json: '{"path":"a.txt","cont' } },
    ],
    ['message_delta', { delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 8192 } }],
    ['message_stop', {}],
  ];
  for (const [type, data] of events) reply.apply(type, JSON.stringify({ type, ...data }));
  expect(reply.finish()).toEqual({
    content: [{ type: 'text', text: 'writing now' }],
    stopReason: 'max_tokens',
    usage: { input_tokens: 3, output_tokens: 8192 },
  });
});
