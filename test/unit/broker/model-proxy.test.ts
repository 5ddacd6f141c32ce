import { stat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OAUTH_BETA, startModelProxy, type ModelProxyOptions } from '../../../src/broker/model-proxy.js';
import type { TokenUsage } from '../../../src/core/types.js';
import {
  closedPort,
  collectAudit,
  collectLogs,
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
}> {
  const tmp = await tempDir();
  cleanups.push(tmp.cleanup);
  const socketPath = join(tmp.dir, 'model.sock');
  const audit = collectAudit();
  const usage: TokenUsage[] = [];
  const logs = collectLogs();
  const proxy = await startModelProxy({
    socketPath,
    placeholderKey: PLACEHOLDER,
    run: RUN,
    upstreamBaseUrl,
    credential: { kind: 'api_key', value: REAL_KEY },
    audit,
    onUsage: (u) => usage.push(u),
    logger: logs,
    ...overrides,
  });
  cleanups.push(() => proxy.close());
  return { socketPath, audit, usage, logs };
}

async function upstream(handler: Parameters<typeof startFakeUpstream>[0]): Promise<FakeUpstream> {
  const fake = await startFakeUpstream(handler);
  cleanups.push(() => fake.close());
  return fake;
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
    expect(received[0].toString('latin1')).toBe(bytes.subarray(0, firstCut).toString('latin1'));
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
    expect(res.body).toContain('ECONNREFUSED');
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

  it('stops the upstream request when the client goes away mid-stream', async () => {
    let upstreamClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const fake = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: ping\ndata: {"type":"ping"}\n\n');
      res.on('close', () => upstreamClosed());
    });
    const { socketPath } = await setup(fake.baseUrl);
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
      req.end('{}');
    });
    await closed;
  });
});
