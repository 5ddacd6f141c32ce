// `nanoclaw doctor` checks the model upstream without spending tokens (issue 10):
// the real CLI against a local upstream that accepts, refuses the key, does not
// know the model, or is not there at all.

import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeCliHome, runCli, type CliHome } from '../support/cli.js';

const KEY = 'sk-ant-api03-doctor-secret-4f1e';

interface Upstream {
  url: string;
  requests: Array<{ method: string; url: string; key: string | undefined }>;
  close(): Promise<void>;
}

/** Answers GET /v1/models/<name>: 401 for any other key, 404 for any other model. */
async function startUpstream(knownModel: string): Promise<Upstream> {
  const requests: Upstream['requests'] = [];
  const server = http.createServer((req, res) => {
    const key = req.headers['x-api-key'] as string | undefined;
    requests.push({ method: req.method ?? '', url: req.url ?? '', key });
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (key !== KEY)
      return send(401, {
        type: 'error',
        error: { type: 'authentication_error', message: 'invalid x-api-key' },
      });
    const model = decodeURIComponent((req.url ?? '').replace(/^\/v1\/models\//, ''));
    if (model !== knownModel)
      return send(404, { type: 'error', error: { type: 'not_found_error', message: `model: ${model}` } });
    send(200, { type: 'model', id: model });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let home: CliHome | undefined;
let upstream: Upstream | undefined;
afterEach(async () => {
  home?.cleanup();
  home = undefined;
  await upstream?.close();
  upstream = undefined;
});

async function doctor(env: NodeJS.ProcessEnv) {
  home = makeCliHome({ NANOCLAW_ENGINE: 'claude-code', ...env });
  const result = await runCli(['doctor'], home.env);
  const line = result.stdout.split('\n').find((l) => l.includes('model upstream')) ?? '';
  expect(result.stdout + result.stderr).not.toContain(KEY);
  return { ...result, line };
}

describe('nanoclaw doctor: the model upstream', () => {
  it('passes when the upstream answers, the key is accepted and the model is known; no tokens spent', async () => {
    upstream = await startUpstream('claude-good-1');
    const host = new URL(upstream.url).host;
    const result = await doctor({
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: upstream.url,
      NANOCLAW_MODEL: 'claude-good-1',
    });
    expect(result.line).toBe(
      `ok   model upstream: ${host} reachable, key accepted, model "claude-good-1" known (no tokens spent)`,
    );
    expect(result.code, result.stdout).toBe(0);
    expect(upstream.requests).toEqual([{ method: 'GET', url: '/v1/models/claude-good-1', key: KEY }]);
  });

  it('fails with the cause when the key is refused (401)', async () => {
    upstream = await startUpstream('claude-good-1');
    const host = new URL(upstream.url).host;
    const result = await doctor({ ANTHROPIC_API_KEY: 'sk-ant-wrong', ANTHROPIC_BASE_URL: upstream.url });
    expect(result.code).toBe(1);
    expect(result.line).toBe(
      `FAIL model upstream: the API key was refused by ${host} (401); check ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) and run nanoclaw doctor`,
    );
  });

  it('fails with the model name when the model is unknown (404)', async () => {
    upstream = await startUpstream('claude-good-1');
    const host = new URL(upstream.url).host;
    const result = await doctor({
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: upstream.url,
      NANOCLAW_MODEL: 'claude-typo-1',
    });
    expect(result.code).toBe(1);
    expect(result.line).toBe(
      `FAIL model upstream: the model name "claude-typo-1" is not known to ${host} (404); fix NANOCLAW_MODEL`,
    );
  });

  it('fails with "unreachable" when nothing listens there', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const result = await doctor({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}` });
    expect(result.code).toBe(1);
    expect(result.line).toBe(`FAIL model upstream: 127.0.0.1:${port} is unreachable (connection refused)`);
  });
});
