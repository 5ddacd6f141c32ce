// Model failures reach the owner in seconds, with the cause (issue 10): the real
// CLI (`chat --json`), the real Claude Code in bwrap, and a scripted upstream that
// refuses the key, the model name or the request — or is overloaded for a while.

import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import type { StaticTurn } from '../support/fake-model-server.js';
import { chatLines, makeAgentHome, useAgentFixture } from './agent-support.js';

const E2E_TIMEOUT_MS = 120_000;
/** Generous: a non-retryable refusal must end the run at once, not after the agent's minutes of retries. */
const NOTICE_BOUND_MS = 45_000;

const fixture = useAgentFixture();

/** Sends one message through `chat --json` with stdin closed; the command exits once it is answered. */
async function chatOnce(env: NodeJS.ProcessEnv, text: string) {
  const startedAt = Date.now();
  const result = await runCli(['chat', '--json'], env, `${JSON.stringify({ text })}\n`, 90_000);
  return { ...result, elapsedMs: Date.now() - startedAt, lines: chatLines(result.stdout) };
}

function refusal(status: number, type: string, message: string): () => StaticTurn {
  return () => ({ error: { status, type, message } });
}

/** A closed TCP port on 127.0.0.1: bound, noted and released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('model errors reach the chat with the cause (bwrap + Claude Code)', () => {
  /** Upstream requests at most: a setup refusal stops the run at the first; the agent gives up a 400 itself, after a few re-sends. */
  const cases: Array<{ name: string; turn: () => StaticTurn; expected: RegExp; maxRequests?: number }> = [
    {
      name: '401: the key was refused',
      turn: refusal(401, 'authentication_error', 'invalid x-api-key'),
      expected:
        /the API key was refused by 127\.0\.0\.1:\d+ \(401\); check ANTHROPIC_API_KEY .*nanoclaw doctor/,
    },
    {
      name: '403: the key may not do this',
      turn: refusal(403, 'permission_error', 'this key cannot use this model'),
      expected: /not allowed to do this at 127\.0\.0\.1:\d+ \(403: this key cannot use this model\)/,
    },
    {
      name: '404: the model name is unknown',
      turn: refusal(404, 'not_found_error', 'model: claude-nope-9'),
      expected: /the model name "claude-nope-9" is not known to 127\.0\.0\.1:\d+ \(404\); fix NANOCLAW_MODEL/,
    },
    {
      name: '400: the request is invalid',
      turn: refusal(400, 'invalid_request_error', 'messages: malformed'),
      expected: /refused the request as invalid \(400: messages: malformed\)/,
      maxRequests: 10,
    },
  ];

  for (const c of cases) {
    it(
      `${c.name}: one notice at once, not retried, and chat --json exits`,
      async () => {
        const { fake, home } = await fixture.setUp(c.turn);
        // Retries would show as more runs; the router must not even try.
        home.writeConfig({ retryBaseMs: 200, maxRetries: 3 });
        const result = await chatOnce(home.env, 'hello there');
        expect(result.code, result.stderr).toBe(0);
        expect(result.elapsedMs).toBeLessThan(NOTICE_BOUND_MS);
        expect(result.lines).toHaveLength(1);
        expect(result.lines[0].chat).toBe('local:main');
        expect(result.lines[0].text).toMatch(/^Sorry, I couldn't answer: /);
        expect(result.lines[0].text).toMatch(c.expected);
        // Never the sandbox's loopback bridge or "server-side" wording.
        expect(result.lines[0].text).not.toMatch(/server-side|model\.sock/);
        expect(result.stderr).not.toMatch(/unanswered messages will be retried/);
        // One run, stopped after its first refused request (a side request may race it).
        expect(fake.requests.filter((r) => r.path === '/v1/messages').length).toBeLessThanOrEqual(
          c.maxRequests ?? 3,
        );
      },
      E2E_TIMEOUT_MS,
    );
  }

  for (const [status, type] of [
    [529, 'overloaded_error'],
    [429, 'rate_limit_error'],
  ] as const) {
    it(
      `${status}: retried until the model answers`,
      async () => {
        let conversations = 0;
        const { fake, home } = await fixture.setUp((request) => {
          if (request.kind !== 'conversation') return { text: 'ok' };
          conversations += 1;
          return conversations <= 2
            ? { error: { status, type, message: 'try again later' } }
            : { text: 'answered after all' };
        });
        home.writeConfig({ retryBaseMs: 200, maxRetries: 3 });
        const result = await chatOnce(home.env, 'are you there?');
        expect(result.code, result.stderr).toBe(0);
        expect(result.lines).toEqual([{ chat: 'local:main', text: 'answered after all' }]);
        expect(fake.conversationRequests().length).toBeGreaterThanOrEqual(3);
      },
      E2E_TIMEOUT_MS,
    );
  }

  it(
    'unreachable upstream: retried, then the notice names the configured host, not the bridge',
    async () => {
      const { fake } = await fixture.setUp(() => ({ text: 'unused' }));
      const port = await closedPort();
      const home = makeAgentHome(fake, { ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}` });
      try {
        // The agent keeps retrying an unreachable model for minutes; a short run timeout ends each
        // run sooner, and its cause is still the model, not "run timeout".
        home.writeConfig({ retryBaseMs: 200, maxRetries: 1, runTimeoutMs: 8_000 });
        const result = await chatOnce(home.env, 'anyone home?');
        expect(result.code, result.stderr).toBe(0);
        expect(result.lines).toHaveLength(1);
        expect(result.lines[0].text).toContain(`127.0.0.1:${port} is unreachable (connection refused)`);
        expect(result.lines[0].text).toMatch(/after several tries/);
        expect(result.lines[0].text).not.toMatch(/server-side|run timeout/);
        expect(result.stderr.match(/unanswered messages will be retried/g)).toHaveLength(2);
      } finally {
        home.cleanup();
      }
    },
    E2E_TIMEOUT_MS,
  );
});
