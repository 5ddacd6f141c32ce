// `nanoclaw doctor` reports the voice-note transcriber (issue 13): none (fine:
// placeholder plus audio file), a reachable service with its key accepted, a
// refused key, and a service that is down. The key is never printed.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeCliHome, runCli, type CliHome } from '../support/cli.js';

const KEY = 'sk-speech-doctor-secret-91c2';

let home: CliHome | undefined;
let server: http.Server | undefined;
afterEach(async () => {
  home?.cleanup();
  home = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Answers GET /v1/models: 200 with the right key, 401 otherwise. */
async function speechService(): Promise<string> {
  server = http.createServer((req, res) => {
    const ok = req.headers.authorization === `Bearer ${KEY}`;
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end('{"data":[]}');
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function transcriberLine(env: NodeJS.ProcessEnv): Promise<string> {
  home = makeCliHome(env);
  const result = await runCli(['doctor'], home.env);
  expect(result.stdout + result.stderr).not.toContain(KEY);
  return result.stdout.split('\n').find((l) => l.includes(' transcriber: ')) ?? '';
}

describe('doctor: transcriber', () => {
  it('reports none as fine, with what it means', async () => {
    expect(await transcriberLine({})).toMatch(
      /^ok {3}transcriber: none: voice notes reach the agent as audio files/,
    );
  });

  it('reports a reachable service whose key is accepted, and a refused key', async () => {
    const url = await speechService();
    const env = { NANOCLAW_TRANSCRIBER: 'openai-compatible', NANOCLAW_TRANSCRIBER_URL: url };
    expect(await transcriberLine({ ...env, NANOCLAW_TRANSCRIBER_KEY: KEY })).toMatch(
      /^ok {3}transcriber: openai-compatible at http:\/\/127\.0\.0\.1:\d+ \(model whisper-1\): reachable, key set$/,
    );
    home?.cleanup();
    expect(await transcriberLine({ ...env, NANOCLAW_TRANSCRIBER_KEY: 'wrong' })).toMatch(
      /^warn transcriber: .*the key was refused \(HTTP 401\); check NANOCLAW_TRANSCRIBER_KEY$/,
    );
  });

  it('reports a service that is down, and that voice notes then fall back', async () => {
    const line = await transcriberLine({
      NANOCLAW_TRANSCRIBER: 'openai-compatible',
      NANOCLAW_TRANSCRIBER_URL: 'http://127.0.0.1:9',
    });
    expect(line).toMatch(
      /^warn transcriber: openai-compatible at http:\/\/127\.0\.0\.1:9 .*unreachable; voice notes fall back/,
    );
  });
});
