// How soon a model failure reaches the owner (issue 10), through the real CLI
// (`chat --json`), the real Claude Code in bwrap and the real broker, with the
// default settings (run timeout, retries, the trouble grace): message sent →
// first chat line, for a refused key (401, not retried: one run, stopped at the
// first refusal) and for an unreachable upstream (connection refused: the agent
// keeps retrying, and the chat hears so once the trouble outlasts the grace).

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { ChatSession, makeCliHome, type CliHome } from '../test/support/cli.js';
import { startFakeModelServer, type FakeModelServer } from '../test/support/fake-model-server.js';
import { medianFigure, type BenchFigure } from './figure.js';

const SAMPLES = 3;
const NOTICE_TIMEOUT_MS = 120_000;

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * One `chat --json` session: sends a message and times the first chat line.
 * `stop` ends it: closing input lets an answered chat exit; a chat whose agent
 * keeps retrying a dead upstream is stopped like the owner would (SIGTERM).
 */
async function noticeMs(home: CliHome, stop: 'end' | 'terminate'): Promise<number> {
  const chat = new ChatSession(home.env);
  try {
    // Sent as soon as `chat` starts: the figure includes the host's start-up, as the owner sees it.
    const startedAt = performance.now();
    chat.send({ text: 'hello?' });
    await chat.waitFor((lines) => lines.length > 0, NOTICE_TIMEOUT_MS);
    return performance.now() - startedAt;
  } finally {
    if (stop === 'terminate') {
      chat.child.kill('SIGTERM');
      await chat.exited;
    } else {
      await chat.end();
    }
  }
}

function agentHome(baseUrl: string): CliHome {
  return makeCliHome({
    NANOCLAW_ENGINE: 'claude-code',
    ANTHROPIC_API_KEY: 'sk-ant-api03-bench-owner-notice',
    ANTHROPIC_BASE_URL: baseUrl,
  });
}

async function sample(baseUrl: () => Promise<string>, stop: 'end' | 'terminate'): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const home = agentHome(await baseUrl());
    try {
      samples.push(await noticeMs(home, stop));
    } finally {
      home.cleanup();
    }
  }
  return samples;
}

export async function benchOwnerNotice(): Promise<BenchFigure[]> {
  let fake: FakeModelServer | undefined;
  let samples401: number[];
  try {
    fake = await startFakeModelServer({
      script: Array.from({ length: 50 }, () => ({
        error: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' },
      })),
    });
    const url = fake.url;
    samples401 = await sample(async () => url, 'end');
  } finally {
    await fake?.close();
  }
  const samplesUnreachable = await sample(async () => `http://127.0.0.1:${await closedPort()}`, 'terminate');
  return [
    medianFigure('owner_notice_ms_401', samples401, 'ms', 0),
    medianFigure('owner_notice_ms_unreachable', samplesUnreachable, 'ms', 0),
  ];
}
