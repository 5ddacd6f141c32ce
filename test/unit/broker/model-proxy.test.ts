import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OAUTH_BETA,
  startModelProxy,
  type ModelProxy,
  type ModelProxyOptions,
} from '../../../src/broker/model-proxy.js';
import type { ModelError } from '../../../src/broker/model-errors.js';
import type { TokenUsage } from '../../../src/core/types.js';
import {
  closedPort,
  collectAudit,
  collectLogs,
  rawExchange,
  requestOverSocket,
  startFakeUpstream,
  tempDir,
  type FakeUpstream,
} from './helpers.js';

const PLACEHOLDER = 'ph-run-7f3a9c';
const REAL_KEY = 'sk-ant-api03-REAL-SECRET-do-not-leak';
const RUN = { runId: 'run-1', groupFolder: 'family', taskId: null };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(
  upstreamBaseUrl: string,
  overrides: Partial<ModelProxyOptions> = {},
): Promise<{
  socketPath: string;
  audit: ReturnType<typeof collectAudit>;
  usage: TokenUsage[];
  logs: ReturnType<typeof collectLogs>;
  /** Resolves once `count` usage reports arrived. */
  usageRecorded(count: number): Promise<TokenUsage[]>;
  proxy: ModelProxy;
}> {
  const tmp = await tempDir();
  cleanups.push(tmp.cleanup);
  const socketPath = join(tmp.dir, 'model.sock');
  const audit = collectAudit();
  const usage: TokenUsage[] = [];
  const waiters: Array<() => void> = [];
  const logs = collectLogs();
  const proxy = await startModelProxy({
    socketPath,
    placeholderKey: PLACEHOLDER,
    run: RUN,
    upstreamBaseUrl,
    credential: { kind: 'api_key', value: REAL_KEY },
    audit,
    onUsage: (u) => {
      usage.push(u);
      for (const wake of waiters.splice(0)) wake();
    },
    logger: logs,
    ...overrides,
  });
  cleanups.push(() => proxy.close());
  const usageRecorded = async (count: number): Promise<TokenUsage[]> => {
    while (usage.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    return usage;
  };
  return { socketPath, audit, usage, logs, usageRecorded, proxy };
}

async function upstream(handler: Parameters<typeof startFakeUpstream>[0]): Promise<FakeUpstream> {
  const fake = await startFakeUpstream(handler);
  cleanups.push(() => fake.close());
  return fake;
}

/** One SSE event as the Messages API writes it. */
function sse(type: string, data: object): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

const jsonReply = (body: unknown) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('model proxy: credentials', () => {
  it('injects the real key, strips the placeholder and hop-by-hop headers, forwards body and query', async () => {
    const fake = await upstream(jsonReply({ id: 'msg_1' }));
    const { socketPath, audit } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages?beta=true',
      headers: {
        'x-api-key': PLACEHOLDER,
        authorization: `Bearer ${PLACEHOLDER}`,
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
        connection: 'keep-alive, x-hop',
        'x-hop': 'secret-hop',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        host: 'sandbox.invalid',
      },
      body: '{"model":"m","messages":[]}',
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ id: 'msg_1' });
    expect(fake.requests).toHaveLength(1);
    const seen = fake.requests[0];
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/v1/messages?beta=true');
    expect(seen.body).toBe('{"model":"m","messages":[]}');
    expect(seen.headers['x-api-key']).toBe(REAL_KEY);
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen.headers.host).toBe(`127.0.0.1:${fake.port}`);
    expect(seen.headers['x-hop']).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(JSON.stringify(seen.headers)).not.toContain(PLACEHOLDER);
    expect(audit.records).toEqual([]);
  });

  it('accepts the placeholder as a bearer token too', async () => {
    const fake = await upstream(jsonReply({}));
    const { socketPath } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages/count_tokens',
      headers: { authorization: `Bearer ${PLACEHOLDER}` },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(fake.requests[0].headers['x-api-key']).toBe(REAL_KEY);
    expect(fake.requests[0].headers.authorization).toBeUndefined();
  });

  it('in oauth mode sends a bearer token and the oauth beta, keeping client betas', async () => {
    const fake = await upstream(jsonReply({}));
    const { socketPath } = await setup(fake.baseUrl, {
      credential: { kind: 'oauth', value: 'sk-ant-oat01-REAL' },
    });
    await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER, 'anthropic-beta': 'fine-grained-tool-streaming-2025-05-14' },
      body: '{}',
    });
    await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER, 'anthropic-beta': `${OAUTH_BETA},x-2025` },
      body: '{}',
    });
    const [first, second] = fake.requests;
    expect(first.headers.authorization).toBe('Bearer sk-ant-oat01-REAL');
    expect(first.headers['x-api-key']).toBeUndefined();
    expect(first.headers['anthropic-beta']).toBe(`fine-grained-tool-streaming-2025-05-14,${OAUTH_BETA}`);
    expect(second.headers['anthropic-beta']).toBe(`${OAUTH_BETA},x-2025`);
  });

  it('refuses a wrong or missing placeholder with 401 and one audit record, never reaching upstream', async () => {
    const fake = await upstream(jsonReply({}));
    const { socketPath, audit } = await setup(fake.baseUrl);
    const wrong = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': 'ph-run-guess' },
      body: '{}',
    });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).error.type).toBe('authentication_error');
    const missing = await requestOverSocket(socketPath, { path: '/v1/messages', body: '{}' });
    expect(missing.status).toBe(401);
    const realKeyFromInside = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': REAL_KEY },
      body: '{}',
    });
    expect(realKeyFromInside.status).toBe(401);
    expect(fake.requests).toHaveLength(0);
    expect(audit.records).toHaveLength(3);
    for (const record of audit.records) {
      expect(record).toEqual({
        group: 'family',
        runId: 'run-1',
        action: 'model_request',
        target: '/v1/messages',
        reason: 'bad_placeholder_key',
      });
    }
  });
});

describe('model proxy: paths', () => {
  it.each([
    ['POST', '/v1/models?limit=5', '/v1/models'],
    ['GET', '/v1/messages', '/v1/messages'],
    ['POST', '/v1/messages/../files', '/v1/messages/../files'],
    ['POST', '//v1/messages', '//v1/messages'],
    ['POST', '/v1/messages/batches', '/v1/messages/batches'],
    ['POST', '/api/oauth/usage', '/api/oauth/usage'],
  ])('%s %s → 403 path_not_allowed', async (method, path, target) => {
    const fake = await upstream(jsonReply({}));
    const { socketPath, audit } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, { method, path, headers: { 'x-api-key': PLACEHOLDER } });
    expect(res.status).toBe(403);
    expect(fake.requests).toHaveLength(0);
    expect(audit.records).toEqual([
      { group: 'family', runId: 'run-1', action: 'model_request', target, reason: 'path_not_allowed' },
    ]);
  });

  it('keeps the upstream base URL path prefix', async () => {
    const fake = await upstream(jsonReply({}));
    const { socketPath } = await setup(`${fake.baseUrl}/gateway/anthropic/`);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages?beta=true',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(fake.requests[0].url).toBe('/gateway/anthropic/v1/messages?beta=true');
  });

  it('makes the socket file connectable by the sandbox uid (0666)', async () => {
    const fake = await upstream(jsonReply({}));
    const { socketPath } = await setup(fake.baseUrl);
    const info = await stat(socketPath);
    expect(info.isSocket()).toBe(true);
    expect(info.mode & 0o777).toBe(0o666);
  });
});

describe('model proxy: streaming and usage', () => {
  it('streams SSE chunk by chunk and records usage from events split across chunks', async () => {
    let releaseRest: () => void = () => undefined;
    const restReleased = new Promise<void>((resolve) => (releaseRest = resolve));
    const events =
      'event: message_start\r\ndata: {"type":"message_start","message":{"usage":{"input_tokens":12,' +
      '"cache_read_input_tokens":3,"cache_creation_input_tokens":4,"output_tokens":1}}}\r\n\r\n' +
      'event: content_block_delta\r\ndata: {"type":"content_block_delta","delta":{"text":"ünï"}}\r\n\r\n' +
      'event: message_delta\r\ndata: {"type":"message_delta","usage":{"output_tokens":30}}\r\n\r\n';
    const bytes = Buffer.from(events, 'utf8');
    // First chunk ends mid-JSON of message_start; the upstream holds the rest until the client saw it.
    const firstCut = 60;
    const fake = await upstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(bytes.subarray(0, firstCut));
      await restReleased;
      // Split inside a multi-byte character and between `\r` and `\n`.
      const cuts = [
        firstCut,
        bytes.indexOf('ü') + 1,
        bytes.indexOf('\r\n\r\nevent: message_delta') + 1,
        bytes.length,
      ];
      for (let i = 0; i < cuts.length - 1; i++) {
        res.write(bytes.subarray(cuts[i], cuts[i + 1]));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      res.end();
    });
    const { socketPath, usage } = await setup(fake.baseUrl);

    const received: Buffer[] = [];
    let firstChunkAt = 0;
    let endAt = 0;
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          socketPath,
          method: 'POST',
          path: '/v1/messages',
          headers: { 'x-api-key': PLACEHOLDER },
          agent: false,
        },
        (res) => {
          expect(res.headers['content-type']).toBe('text/event-stream');
          res.on('data', (chunk: Buffer) => {
            if (received.length === 0) {
              firstChunkAt = performance.now() - started;
              releaseRest();
            }
            received.push(chunk);
          });
          res.on('end', () => {
            endAt = performance.now() - started;
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end('{"stream":true}');
    });
    // The upstream only finishes after the client saw the first chunk, so reaching here proves no buffering.
    // (The scrubber may hold back a few trailing bytes that could start a secret, never the whole chunk.)
    expect(received[0].length).toBeGreaterThan(0);
    expect(bytes.subarray(0, firstCut).toString('latin1')).toContain(received[0].toString('latin1'));
    expect(bytes.indexOf(received[0])).toBe(0);
    expect(firstChunkAt).toBeLessThan(endAt);
    expect(Buffer.concat(received).equals(bytes)).toBe(true);
    expect(usage).toEqual([{ inputTokens: 12, outputTokens: 30, cacheReadTokens: 3, cacheWriteTokens: 4 }]);
  });

  it('records usage once from a JSON response, and none from count_tokens', async () => {
    const fake = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url?.startsWith('/v1/messages/count_tokens')) {
        res.end('{"input_tokens":99}');
        return;
      }
      // Written in two pieces so the proxy sees the body split.
      res.write('{"id":"msg_2","usage":{"input_tokens":7,"output_tok');
      res.end('ens":8,"cache_read_input_tokens":0,"cache_creation_input_tokens":2}}');
    });
    const { socketPath, usage } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
    });
    expect(JSON.parse(res.body).id).toBe('msg_2');
    const count = await requestOverSocket(socketPath, {
      path: '/v1/messages/count_tokens',
      headers: { 'x-api-key': PLACEHOLDER },
    });
    expect(count.body).toBe('{"input_tokens":99}');
    expect(usage).toEqual([{ inputTokens: 7, outputTokens: 8, cacheReadTokens: 0, cacheWriteTokens: 2 }]);
  });

  it('passes upstream error statuses through unchanged', async () => {
    const fake = await upstream((_req, res) => {
      res.writeHead(529, { 'content-type': 'application/json', 'retry-after': '3' });
      res.end('{"type":"error","error":{"type":"overloaded_error","message":"busy"}}');
    });
    const { socketPath, usage } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
    });
    expect(res.status).toBe(529);
    expect(res.headers['retry-after']).toBe('3');
    expect(usage).toEqual([]);
  });

  it('answers 502 when the upstream is down, with the credential nowhere in the answer or the log', async () => {
    const port = await closedPort();
    const { socketPath, logs, audit } = await setup(`http://127.0.0.1:${port}`);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).error.type).toBe('api_error');
    expect(JSON.parse(res.body).error.message).toBe(`127.0.0.1:${port} is unreachable (connection refused)`);
    expect(res.body).not.toContain(REAL_KEY);
    expect(logs.entries.length).toBeGreaterThan(0);
    expect(logs.text()).not.toContain(REAL_KEY);
    expect(audit.records).toEqual([]);
  });

  it('answers 502 (not a crash) when the credential cannot even be put in a header', async () => {
    const fake = await upstream(jsonReply({}));
    const { socketPath, logs } = await setup(fake.baseUrl, {
      credential: { kind: 'api_key', value: 'sk-bad\nvalue-SECRET' },
    });
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
    });
    expect(res.status).toBe(502);
    expect(res.body).not.toContain('value-SECRET');
    expect(logs.text()).not.toContain('value-SECRET');
    expect(fake.requests).toHaveLength(0);
  });

  it('reads the answer to its end after the client hangs up, and records the full usage', async () => {
    let clientGone: () => void = () => undefined;
    const hungUp = new Promise<void>((resolve) => (clientGone = resolve));
    let upstreamFinished: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (upstreamFinished = resolve));
    const fake = await upstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse('message_start', { message: { usage: { input_tokens: 50, output_tokens: 1 } } }));
      res.write(sse('content_block_delta', { delta: { type: 'text_delta', text: 'first words' } }));
      // The rest of a 7 500-token answer only comes after the sandbox hung up.
      await hungUp;
      for (let i = 0; i < 200; i++) {
        res.write(
          sse('content_block_delta', { delta: { type: 'text_delta', text: `chunk ${i} `.repeat(50) } }),
        );
      }
      res.write(sse('message_delta', { usage: { output_tokens: 7_500 } }));
      res.end(sse('message_stop', {}));
      res.on('finish', () => upstreamFinished());
    });
    const { socketPath, usageRecorded } = await setup(fake.baseUrl);
    await new Promise<void>((resolve) => {
      const req = http.request(
        {
          socketPath,
          method: 'POST',
          path: '/v1/messages',
          headers: { 'x-api-key': PLACEHOLDER },
          agent: false,
        },
        (res) =>
          res.once('data', () => {
            req.destroy();
            resolve();
          }),
      );
      req.on('error', () => undefined);
      req.end('{"stream":true,"max_tokens":8000}');
    });
    clientGone();
    await finished;
    expect(await usageRecorded(1)).toEqual([
      { inputTokens: 50, outputTokens: 7_500, cacheReadTokens: 0, cacheWriteTokens: 0 },
    ]);
  });
});

describe('model proxy: path fidelity (issue 9 item 12)', () => {
  it.each([
    ['/v1/messages', '/v1/messages'],
    ['/v1/messages?beta=true', '/v1/messages?beta=true'],
    ['/v1/messages/count_tokens?beta=true', '/v1/messages/count_tokens?beta=true'],
  ])('forwards %s as exactly %s', async (path, seen) => {
    const fake = await upstream(jsonReply({}));
    const { socketPath, audit } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path,
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(fake.requests.map((r) => r.url)).toEqual([seen]);
    expect(audit.records).toEqual([]);
  });

  it.each([
    '/v1/messages?x=/../../v1/models',
    '/v1/messages?beta=true&x=/../../v1/models',
    '/v1/messages?beta=true/../../v1/models',
    '/v1/messages?beta=false',
    '/v1/messages?BETA=true',
    '/v1/messages?',
    '/v1/messages?beta=true#frag',
    '/v1/messages/count_tokens?x=1',
  ])('refuses the query of %s: 403, audited with the raw target, upstream untouched', async (path) => {
    const fake = await upstream(jsonReply({}));
    const { socketPath, audit } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path,
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.type).toBe('permission_error');
    expect(fake.requests).toHaveLength(0);
    expect(audit.records).toEqual([
      { group: 'family', runId: 'run-1', action: 'model_request', target: path, reason: 'path_not_allowed' },
    ]);
  });
});

describe('model proxy: malformed requests (issue 9 item 10)', () => {
  it.each([
    ['garbage', 'GARBAGE\r\n\r\n'],
    [
      'content-length with chunked (smuggling)',
      `POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${PLACEHOLDER}\r\nContent-Length: 4\r\n` +
        'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'two content-lengths',
      `POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${PLACEHOLDER}\r\nContent-Length: 2\r\n` +
        'Content-Length: 3\r\n\r\n{}',
    ],
    ['a space in a header name', 'POST /v1/messages HTTP/1.1\r\nHost: x\r\nx api-key: y\r\n\r\n'],
  ])('answers %s with 400 JSON, closes, and writes a bad_request record', async (_name, bytes) => {
    const fake = await upstream(jsonReply({}));
    const { socketPath, audit } = await setup(fake.baseUrl);
    const answer = await rawExchange(socketPath, bytes);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/connection: close/i);
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    expect(JSON.parse(body)).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'malformed HTTP request' },
    });
    expect(fake.requests).toHaveLength(0);
    expect(audit.records).toEqual([
      { group: 'family', runId: 'run-1', action: 'model_request', target: null, reason: 'bad_request' },
    ]);
  });
});

/** What an echoing upstream could leak: the key in every spelling scrub.ts promises to catch. */
function leakyForms(key: string): Record<string, string> {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  return {
    raw: key,
    base64: b64(key),
    base64Shifted: b64(`x-api-key: ${key}`),
    base64Url: b64(`:${key}`).replace(/\+/g, '-').replace(/\//g, '_'),
    urlEncoded: encodeURIComponent(`${key}/+=`),
    jsonEscaped: JSON.stringify(JSON.stringify({ key })),
    hex: Buffer.from(key).toString('hex'),
    truncated: `${key.slice(0, 20)}...`,
  };
}

/** Asserts no spelling of the key, nor any 16-char piece of the raw key, is in `text`. */
function expectNoKey(text: string): void {
  for (const [name, form] of Object.entries(leakyForms(REAL_KEY))) {
    if (name === 'truncated') continue;
    expect(text, name).not.toContain(form);
  }
  for (let i = 0; i + 16 <= REAL_KEY.length; i++) expect(text).not.toContain(REAL_KEY.slice(i, i + 16));
}

describe('model proxy: upstream answers are scrubbed (issue 9 item 11)', () => {
  it('scrubs a JSON error body that echoes the request headers, in every encoding', async () => {
    const fake = await upstream((req, res) => {
      const echoed = { headers: req.headers, forms: leakyForms(String(req.headers['x-api-key'])) };
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'authentication_error', echoed } }));
    });
    const { socketPath } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(401);
    expectNoKey(res.body);
    const parsed = JSON.parse(res.body) as { error: { echoed: { headers: Record<string, string> } } };
    expect(parsed.error.echoed.headers['x-api-key']).toBe('[redacted]');
    // Unrelated fields pass untouched.
    expect(parsed.error.echoed.headers['content-length']).toBe('2');
  });

  it('scrubs an SSE stream even when the key is split across chunks, byte by byte', async () => {
    const fake = await upstream(async (req, res) => {
      const key = String(req.headers['x-api-key']);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse('message_start', { message: { usage: { input_tokens: 3, output_tokens: 1 } } }));
      const leak = sse('content_block_delta', { delta: { type: 'text_delta', text: `you sent ${key} ok` } });
      for (const byte of Buffer.from(leak)) {
        res.write(Buffer.from([byte]));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const b64 = sse('content_block_delta', { delta: { text: Buffer.from(key).toString('base64') } });
      const cut = b64.length - 30;
      res.write(b64.slice(0, cut));
      await new Promise((resolve) => setTimeout(resolve, 5));
      res.write(b64.slice(cut));
      res.end(sse('message_delta', { usage: { output_tokens: 9 } }));
    });
    const { socketPath, usageRecorded } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{"stream":true}',
    });
    expectNoKey(res.body);
    expect(res.body).toContain('"text":"you sent [redacted] ok"');
    expect(res.body).toContain(sse('message_delta', { usage: { output_tokens: 9 } }));
    expect(await usageRecorded(1)).toEqual([
      { inputTokens: 3, outputTokens: 9, cacheReadTokens: 0, cacheWriteTokens: 0 },
    ]);
  });

  it('scrubs response headers and drops one whose name carries the key', async () => {
    const fake = await upstream((req, res) => {
      const key = String(req.headers['x-api-key']);
      res.setHeader('x-echo-key', key);
      res.setHeader('x-echo-auth', `Basic ${Buffer.from(`user:${key}`).toString('base64')}`);
      res.setHeader('set-cookie', [`a=${encodeURIComponent(key)}`, 'b=fine']);
      res.setHeader(`x-${key.slice(0, 20).toLowerCase()}`, 'name leak');
      res.setHeader('request-id', 'req_123');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const { socketPath } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expectNoKey(JSON.stringify(res.headers));
    expect(res.headers['x-echo-key']).toBe('[redacted]');
    expect(res.headers['set-cookie']).toEqual(['a=[redacted]', 'b=fine']);
    expect(res.headers['request-id']).toBe('req_123');
    expect(Object.keys(res.headers).some((name) => name.startsWith('x-sk-'))).toBe(false);
  });

  it('scrubs a gzip body the upstream sent although identity was asked for', async () => {
    const { gzipSync } = await import('node:zlib');
    const fake = await upstream((req, res) => {
      res.writeHead(400, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(JSON.stringify({ echoed: req.headers['x-api-key'] })));
    });
    const { socketPath } = await setup(fake.baseUrl);
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(res.body)).toEqual({ echoed: '[redacted]' });
  });
});

describe('model proxy: daily token budget per request (issue 9 item 5)', () => {
  it('refuses a request once the group is over budget, with an API-style error and one audit record', async () => {
    const fake = await upstream(jsonReply({ id: 'msg', usage: { input_tokens: 100, output_tokens: 30 } }));
    const spent: number[] = [];
    const { socketPath, audit, usage } = await setup(fake.baseUrl, {
      budget: { dailyTokens: 120, tokensUsedToday: () => spent.reduce((a, b) => a + b, 0) },
      onUsage: (u) => void spent.push(u.inputTokens + u.outputTokens),
    });
    const call = (path = '/v1/messages?beta=true') =>
      requestOverSocket(socketPath, { path, headers: { 'x-api-key': PLACEHOLDER }, body: '{}' });
    expect((await call()).status).toBe(200);
    expect(spent).toEqual([130]);
    const refused = await call();
    expect(refused.status).toBe(402);
    expect(refused.headers['x-should-retry']).toBe('false');
    expect(JSON.parse(refused.body)).toEqual({
      type: 'error',
      error: {
        type: 'billing_error',
        message: 'the daily token budget of this chat (120 tokens) is used up; it resets at midnight UTC',
      },
    });
    expect((await call()).status).toBe(402);
    // Counting tokens costs none, so it stays open.
    expect((await call('/v1/messages/count_tokens?beta=true')).status).toBe(200);
    expect(fake.requests.map((r) => r.url)).toEqual([
      '/v1/messages?beta=true',
      '/v1/messages/count_tokens?beta=true',
    ]);
    expect(audit.records).toEqual([
      {
        group: 'family',
        runId: 'run-1',
        action: 'model_request',
        target: '/v1/messages',
        reason: 'budget_exceeded',
      },
    ]);
    expect(usage).toEqual([]);
  });

  it('charges the most an answer could cost when the upstream breaks off mid-stream', async () => {
    const fake = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse('message_start', { message: { usage: { input_tokens: 40, output_tokens: 1 } } }));
      res.write(sse('content_block_delta', { delta: { type: 'text_delta', text: 'partial' } }), () =>
        res.socket?.destroy(),
      );
    });
    const { socketPath, usageRecorded } = await setup(fake.baseUrl);
    await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: JSON.stringify({ stream: true, max_tokens: 7_500, messages: [] }),
    }).catch(() => undefined);
    expect(await usageRecorded(1)).toEqual([
      { inputTokens: 40, outputTokens: 7_500, cacheReadTokens: 0, cacheWriteTokens: 0 },
    ]);
  });

  it('on close, waits for a hung-up answer up to the drain limit, then charges an estimate', async () => {
    const fake = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse('message_start', { message: { usage: { input_tokens: 12, output_tokens: 1 } } }));
      // …and never ends.
    });
    const { socketPath, usage, proxy } = await setup(fake.baseUrl, { drainTimeoutMs: 200 });
    await new Promise<void>((resolve) => {
      const req = http.request(
        {
          socketPath,
          method: 'POST',
          path: '/v1/messages',
          headers: { 'x-api-key': PLACEHOLDER },
          agent: false,
        },
        (res) => res.once('data', () => (req.destroy(), resolve())),
      );
      req.on('error', () => undefined);
      req.end('{"stream":true,"max_tokens":2048}');
    });
    expect(usage).toEqual([]);
    await proxy.close();
    expect(usage).toEqual([
      { inputTokens: 12, outputTokens: 2_048, cacheReadTokens: 0, cacheWriteTokens: 0 },
    ]);
  });
});

describe('model proxy: connection cap and host survival (issue 9 item 1)', () => {
  it('refuses connections past the cap at once, audits the first only, counts the rest, and serves again after', async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived: () => void = () => undefined;
    const allArrived = new Promise<void>((resolve) => (arrived = resolve));
    const fake = await upstream(async (_req, res) => {
      if (fake.requests.length === 4) arrived();
      if (fake.requests.length <= 4) await released;
      jsonReply({})(_req, res);
    });
    const { socketPath, audit, logs, proxy } = await setup(fake.baseUrl, { maxConnections: 4 });
    const call = () =>
      requestOverSocket(socketPath, {
        path: '/v1/messages',
        headers: { 'x-api-key': PLACEHOLDER },
        body: '{}',
      });
    const held = Array.from({ length: 4 }, () => call());
    await allArrived;

    const extra = await Promise.allSettled(Array.from({ length: 20 }, () => call()));
    expect(extra.map((r) => r.status)).toEqual(Array(20).fill('rejected'));
    expect(fake.requests).toHaveLength(4);
    expect(audit.records).toEqual([
      { group: 'family', runId: 'run-1', action: 'model_request', target: null, reason: 'connection_limit' },
    ]);

    release();
    for (const res of await Promise.all(held)) expect(res.status).toBe(200);
    // Held connections close a moment after their answers; a fresh one gets through once one has.
    let served = null;
    for (let attempt = 0; attempt < 100 && served === null; attempt++)
      served = await call().catch(() => null);
    expect(served?.status).toBe(200);

    await proxy.close();
    expect(audit.records).toHaveLength(1);
    const summary = logs.entries.find((e) => e.msg === 'broker refusals in this run');
    expect(summary?.fields).toMatchObject({ reason: 'connection_limit', refused: expect.any(Number) });
    expect((summary?.fields as { refused: number }).refused).toBeGreaterThanOrEqual(20);
  });

  it('survives connections while out of file descriptors (EMFILE on accept) and serves again once there are some', async () => {
    const fake = await upstream(jsonReply({ ok: true }));
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    const socketPath = join(tmp.dir, 'model.sock');
    const fixture = fileURLToPath(new URL('./fixtures/starved-broker.ts', import.meta.url));
    // A low descriptor limit for the child alone, so exhausting it is quick and harms nothing else.
    const child = spawn(
      'bash',
      [
        '-c',
        'ulimit -n 128 && exec "$0" --import tsx "$@"',
        process.execPath,
        fixture,
        socketPath,
        fake.baseUrl,
        PLACEHOLDER,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    cleanups.push(async () => void child.kill('SIGKILL'));
    const lines: Array<Record<string, unknown>> = [];
    const waiters: Array<() => void> = [];
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
      for (const wake of waiters.splice(0)) wake();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const seen = async (
      match: (line: Record<string, unknown>) => boolean,
    ): Promise<Record<string, unknown>> => {
      for (;;) {
        const found = lines.find(match);
        if (found) return found;
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        const code = await Promise.race([more.then(() => undefined), exited]);
        if (code !== undefined)
          throw new Error(`the broker process exited (${code}); output: ${JSON.stringify(lines)}`);
      }
    };

    await seen((l) => l.step === 'ready');
    child.stdin.write('exhaust\n');
    expect((await seen((l) => l.step === 'exhausted')).code).toBe('EMFILE');
    // Accepting now fails with EMFILE inside the broker; libuv sheds the connections with its spare
    // descriptor, and whatever reaches the server as an 'error' is logged (guard.test.ts), never thrown.
    const shed = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<string>((resolve) => {
            const socket = net.connect(socketPath);
            socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
            socket.on('close', () => resolve('closed'));
          }),
      ),
    );
    expect(shed).toEqual(Array(5).fill('closed'));
    child.stdin.write('release\n');
    await seen((l) => l.step === 'released');
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ ok: true });
    expect(child.exitCode).toBeNull();
    child.stdin.write('quit\n');
    expect(await exited).toBe(0);
  });
});

describe('model proxy: in-flight request cap', () => {
  it('refuses pipelined requests past the cap with 429, audited once, without reaching upstream', async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived: () => void = () => undefined;
    const twoArrived = new Promise<void>((resolve) => (arrived = resolve));
    const fake = await upstream(async (req, res) => {
      if (fake.requests.length === 2) arrived();
      await released;
      jsonReply({ n: fake.requests.length })(req, res);
    });
    const { socketPath, audit } = await setup(fake.baseUrl, { maxConnections: 2 });
    const one = `POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${PLACEHOLDER}\r\nContent-Length: 2\r\n\r\n{}`;
    const answer = rawExchange(socketPath, one + one + one + one);
    await twoArrived;
    release();
    const text = await answer;
    expect(text.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 429']);
    expect(text).toContain('"type":"rate_limit_error"');
    expect(fake.requests).toHaveLength(2);
    expect(audit.records).toEqual([
      { group: 'family', runId: 'run-1', action: 'model_request', target: null, reason: 'connection_limit' },
    ]);
  });
});

describe('model proxy: model errors are classified and reported (issue 10)', () => {
  function errorUpstream(status: number, type: string, message: string) {
    return upstream((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type, message } }));
    });
  }

  async function ask(socketPath: string, path = '/v1/messages') {
    return requestOverSocket(socketPath, { path, headers: { 'x-api-key': PLACEHOLDER }, body: '{}' });
  }

  it('reports a refused key as not retryable, naming the configured upstream, and tells the client not to retry', async () => {
    const fake = await errorUpstream(401, 'authentication_error', 'invalid x-api-key');
    const errors: ModelError[] = [];
    const { socketPath } = await setup(fake.baseUrl, { onModelError: (e) => errors.push(e) });
    const res = await ask(socketPath);
    expect(res.status).toBe(401);
    expect(res.headers['x-should-retry']).toBe('false');
    expect(errors).toEqual([
      {
        class: 'authentication',
        retryable: false,
        message: `the API key was refused by 127.0.0.1:${fake.port} (401); check ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) and run nanoclaw doctor`,
      },
    ]);
  });

  it('reports an unknown model with its name, and an overload as retryable without the no-retry header', async () => {
    const notFound = await errorUpstream(404, 'not_found_error', 'model: claude-nope');
    const errors: ModelError[] = [];
    const first = await setup(notFound.baseUrl, { onModelError: (e) => errors.push(e) });
    await ask(first.socketPath);
    const overloaded = await errorUpstream(529, 'overloaded_error', 'busy');
    const second = await setup(overloaded.baseUrl, { onModelError: (e) => errors.push(e) });
    const res = await ask(second.socketPath);
    expect(res.headers['x-should-retry']).toBeUndefined();
    expect(errors.map((e) => [e.class, e.retryable])).toEqual([
      ['not_found', false],
      ['overloaded', true],
    ]);
    expect(errors[0].message).toContain('"claude-nope" is not known');
  });

  it('fails a streamed request whose upstream never answers, as unreachable after the response timeout', async () => {
    // Takes the request and says nothing: no status line, no headers.
    const hung = await upstream(() => undefined);
    const errors: ModelError[] = [];
    const { socketPath, usage } = await setup(hung.baseUrl, {
      onModelError: (e) => errors.push(e),
      responseTimeoutMs: 1_000,
    });
    const res = await requestOverSocket(socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{"model":"m","max_tokens":10,"stream":true}',
    });
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toEqual({
      type: 'error',
      error: { type: 'api_error', message: `127.0.0.1:${hung.port} is unreachable (no answer within 1 s)` },
    });
    expect(errors).toEqual([
      {
        class: 'unreachable',
        retryable: true,
        message: `127.0.0.1:${hung.port} is unreachable (no answer within 1 s)`,
      },
    ]);
    // Nothing was answered, so nothing counts as the model answering.
    expect(usage).toEqual([]);
  });

  it('does not cut a whole-answer request that takes long, nor a stream whose body comes late', async () => {
    const later = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    const slowWhole = await upstream(async (_req, res) => {
      await later(2_500);
      jsonReply({ type: 'message', usage: { input_tokens: 1, output_tokens: 1 } })(_req, res);
    });
    const errors: ModelError[] = [];
    const whole = await setup(slowWhole.baseUrl, {
      onModelError: (e) => errors.push(e),
      responseTimeoutMs: 1_000,
    });
    const wholeRes = await requestOverSocket(whole.socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{"model":"m","max_tokens":10}',
    });
    expect(wholeRes.status).toBe(200);

    const slowStream = await upstream(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      await later(2_500);
      res.end(sse('message_stop', {}));
    });
    const streamed = await setup(slowStream.baseUrl, {
      onModelError: (e) => errors.push(e),
      responseTimeoutMs: 1_000,
    });
    const streamRes = await requestOverSocket(streamed.socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': PLACEHOLDER },
      body: '{"model":"m","max_tokens":10,"stream":true}',
    });
    expect(streamRes.status).toBe(200);
    expect(streamRes.body).toContain('message_stop');
    expect(errors).toEqual([]);
  });

  it('reports an unreachable upstream as retryable, and neither count_tokens failures nor its own refusals', async () => {
    const errors: ModelError[] = [];
    const port = await closedPort();
    const down = await setup(`http://127.0.0.1:${port}`, { onModelError: (e) => errors.push(e) });
    await ask(down.socketPath);
    await ask(down.socketPath, '/v1/messages/count_tokens');
    const bad = await requestOverSocket(down.socketPath, {
      path: '/v1/messages',
      headers: { 'x-api-key': 'wrong' },
    });
    expect(bad.status).toBe(401);
    expect(errors).toEqual([
      {
        class: 'unreachable',
        retryable: true,
        message: `127.0.0.1:${port} is unreachable (connection refused)`,
      },
    ]);
  });
});
