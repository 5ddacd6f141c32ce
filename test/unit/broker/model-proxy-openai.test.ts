// The model proxy in its OpenAI-compatible mode (the lite engine's other
// provider): only chat completions pass, the placeholder is swapped for the
// provider's bearer key (or none, for a keyless local server), the Messages API
// is closed, and usage is counted from the stream's usage chunk.

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenUsage } from '../../../src/core/types.js';
import { startModelProxy } from '../../../src/broker/model-proxy.js';
import { collectAudit, requestOverSocket, startFakeUpstream, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const STREAM = [
  'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}',
  'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
  'data: {"choices":[],"usage":{"prompt_tokens":120,"completion_tokens":9,"prompt_tokens_details":{"cached_tokens":100}}}',
  'data: [DONE]',
  '',
].join('\n\n');

async function setup(key: string) {
  const upstream = await startFakeUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(STREAM);
  });
  cleanups.push(() => upstream.close());
  const tmp = await tempDir();
  cleanups.push(tmp.cleanup);
  const socketPath = join(tmp.dir, 'model.sock');
  const audit = collectAudit();
  const usage: TokenUsage[] = [];
  const proxy = await startModelProxy({
    socketPath,
    placeholderKey: 'ph-run',
    run: { runId: 'run-1', groupFolder: 'family', taskId: null },
    upstreamBaseUrl: `${upstream.baseUrl}/ollama`,
    credential: { kind: 'api_key', value: key },
    api: 'openai',
    audit,
    onUsage: (u) => void usage.push(u),
  });
  cleanups.push(() => proxy.close());
  return { upstream, socketPath, audit, usage };
}

const body = JSON.stringify({ model: 'qwen', stream: true, max_tokens: 100, messages: [] });

describe('model proxy, OpenAI-compatible mode', () => {
  it('forwards chat completions with the provider key as bearer and counts the usage chunk', async () => {
    const f = await setup('sk-provider-secret');
    const res = await requestOverSocket(f.socketPath, {
      path: '/v1/chat/completions',
      headers: { authorization: 'Bearer ph-run', 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.body).toBe(STREAM);
    expect(f.upstream.requests).toHaveLength(1);
    expect(f.upstream.requests[0].url).toBe('/ollama/v1/chat/completions');
    expect(f.upstream.requests[0].headers.authorization).toBe('Bearer sk-provider-secret');
    expect(f.upstream.requests[0].headers['x-api-key']).toBeUndefined();
    expect(f.usage).toEqual([
      { inputTokens: 20, outputTokens: 9, cacheReadTokens: 100, cacheWriteTokens: 0 },
    ]);
  });

  it('sends no key to a keyless local server', async () => {
    const f = await setup('');
    const res = await requestOverSocket(f.socketPath, {
      path: '/v1/chat/completions',
      headers: { authorization: 'Bearer ph-run' },
      body,
    });
    expect(res.status).toBe(200);
    expect(f.upstream.requests[0].headers.authorization).toBeUndefined();
  });

  it('refuses the Messages API and a wrong placeholder, and audits both', async () => {
    const f = await setup('sk-provider-secret');
    const messages = await requestOverSocket(f.socketPath, {
      path: '/v1/messages',
      headers: { authorization: 'Bearer ph-run' },
      body,
    });
    expect(messages.status).toBe(403);
    const wrong = await requestOverSocket(f.socketPath, {
      path: '/v1/chat/completions',
      headers: { authorization: 'Bearer guessed' },
      body,
    });
    expect(wrong.status).toBe(401);
    expect(f.upstream.requests).toHaveLength(0);
    expect(f.audit.records.map((r) => r.reason)).toEqual(['path_not_allowed', 'bad_placeholder_key']);
  });
});
