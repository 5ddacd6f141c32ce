// How soon a model failure reaches the owner (issue 10), through the real CLI
// (`chat --json`), the real Claude Code in bwrap and the real broker: message
// sent → first chat line, for a refused key (401, not retried: one run, stopped
// at the first refusal) and for an unreachable upstream (retried; measured with
// no router retries and an 8 s run timeout, since the agent's own retries of a
// dead upstream last minutes and the first-failure notice is not built yet).

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { ChatSession, makeCliHome, type CliHome } from '../test/support/cli.js';
import { startFakeModelServer, type FakeModelServer } from '../test/support/fake-model-server.js';
import { medianFigure, type BenchFigure } from './figure.js';

const SAMPLES_401 = 3;
const NOTICE_TIMEOUT_MS = 120_000;
const UNREACHABLE_RUN_TIMEOUT_MS = 8_000;

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One `chat --json` session: sends a message and times the first chat line. */
async function noticeMs(home: CliHome): Promise<number> {
  const chat = new ChatSession(home.env);
  try {
    // Sent as soon as `chat` starts: the figure includes the host's start-up, as the owner sees it.
    const startedAt = performance.now();
    chat.send({ text: 'hello?' });
    await chat.waitFor((lines) => lines.length > 0, NOTICE_TIMEOUT_MS);
    return performance.now() - startedAt;
  } finally {
    await chat.end();
  }
}

function agentHome(baseUrl: string, config: object): CliHome {
  const home = makeCliHome({
    NANOCLAW_ENGINE: 'claude-code',
    ANTHROPIC_API_KEY: 'sk-ant-api03-bench-owner-notice',
    ANTHROPIC_BASE_URL: baseUrl,
  });
  home.writeConfig(config);
  return home;
}

export async function benchOwnerNotice(): Promise<BenchFigure[]> {
  let fake: FakeModelServer | undefined;
  const samples401: number[] = [];
  try {
    fake = await startFakeModelServer({
      script: Array.from({ length: 50 }, () => ({
        error: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' },
      })),
    });
    for (let i = 0; i < SAMPLES_401; i++) {
      const home = agentHome(fake.url, {});
      try {
        samples401.push(await noticeMs(home));
      } finally {
        home.cleanup();
      }
    }
  } finally {
    await fake?.close();
  }
  const home = agentHome(`http://127.0.0.1:${await closedPort()}`, {
    maxRetries: 0,
    runTimeoutMs: UNREACHABLE_RUN_TIMEOUT_MS,
  });
  let unreachableMs: number;
  try {
    unreachableMs = await noticeMs(home);
  } finally {
    home.cleanup();
  }
  return [
    medianFigure('owner_notice_ms_401_p50', samples401, 'ms', 0),
    {
      name: `owner_notice_ms_unreachable_run_timeout_${UNREACHABLE_RUN_TIMEOUT_MS}ms`,
      value: Math.round(unreachableMs),
      unit: 'ms',
    },
  ];
}
