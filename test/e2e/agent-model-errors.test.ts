// Model failures reach the owner in seconds, with the cause (issue 10): the real
// CLI (`chat --json`), the real Claude Code in bwrap, and a scripted upstream that
// refuses the key, the model name or the request — or is overloaded, rate-limited,
// refusing connections or hung for a while, which the chat hears of once while the
// assistant keeps trying, before the real answer.

import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { makeCliHome, runCli } from '../support/cli.js';
import { startFakeModelServer, type FakeModelServer, type StaticTurn } from '../support/fake-model-server.js';
import { chatLines, REAL_KEY, routed, useAgentFixture } from './agent-support.js';

const E2E_TIMEOUT_MS = 120_000;
/**
 * Generous (a loaded 2-core machine): a refusal must end the run at once, and trouble must be told
 * after the grace, not after the agent's minutes of retries or the 15-minute run timeout.
 */
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

  // The same refusals reach the chat the same way from the lite engine (its runs take a second).
  for (const [c, engine] of cases.flatMap((c) => [[c, 'claude-code'] as const, [c, 'lite'] as const])) {
    it(
      `${c.name}: one notice at once, not retried, and chat --json exits (${engine})`,
      async () => {
        const { fake, home } = await fixture.setUp(c.turn);
        // Retries would show as more runs; the router must not even try.
        home.writeConfig({ retryBaseMs: 200, maxRetries: 3 });
        const result = await chatOnce({ ...home.env, NANOCLAW_ENGINE: engine }, 'hello there');
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

  it(
    'a 529 blip the next try fixes: no notice, just the answer',
    async () => {
      let conversations = 0;
      const { home } = await fixture.setUp((request) => {
        if (request.kind !== 'conversation') return { text: 'ok' };
        conversations += 1;
        return conversations === 1
          ? { error: { status: 529, type: 'overloaded_error', message: 'busy for a moment' } }
          : { text: 'answered after a blip' };
      });
      // A grace no loaded machine's retry of a blip comes near.
      home.writeConfig({ retryBaseMs: 200, maxRetries: 3, modelTroubleNoticeMs: 20_000 });
      const result = await chatOnce(home.env, 'are you there?');
      expect(result.code, result.stderr).toBe(0);
      expect(result.lines).toEqual([{ chat: 'local:main', text: 'answered after a blip' }]);
      expect(conversations).toBeGreaterThanOrEqual(2);
    },
    E2E_TIMEOUT_MS,
  );

  /**
   * One message to a model in trouble: the chat hears once, soon, that the
   * assistant keeps trying; once the upstream recovers, the real answer follows,
   * and nothing else is said.
   */
  async function troubleThenAnswer(options: {
    env: NodeJS.ProcessEnv;
    recover: () => Promise<void> | void;
    notice: RegExp;
    answer: string;
  }): Promise<{ noticeMs: number }> {
    const chat = fixture.chat(options.env);
    const startedAt = Date.now();
    chat.send({ text: 'anyone home?' });
    const [first] = await chat.waitFor((lines) => lines.length >= 1, NOTICE_BOUND_MS);
    const noticeMs = Date.now() - startedAt;
    expect(first.chat).toBe('local:main');
    expect(first.text).toMatch(
      /^The model isn't answering right now: .+\. I'll keep trying and answer when it's back\.$/,
    );
    expect(first.text).toMatch(options.notice);
    // Never the sandbox's loopback bridge, the broker socket or "server-side" wording.
    expect(first.text).not.toMatch(/server-side|model\.sock|localhost/);
    await options.recover();
    await chat.waitFor((lines) => lines.length >= 2, 150_000);
    expect(await chat.end(), chat.stderr).toBe(0);
    // The notice did not answer the message (the real answer came), and it came once.
    expect(chat.lines).toEqual([first, { chat: 'local:main', text: options.answer }]);
    expect(noticeMs).toBeLessThan(NOTICE_BOUND_MS);
    return { noticeMs };
  }

  for (const [status, type, words, engine] of [
    [529, 'overloaded_error', 'is overloaded \\(529\\)', 'claude-code'],
    [429, 'rate_limit_error', 'is rate-limiting requests \\(429\\)', 'claude-code'],
    [529, 'overloaded_error', 'is overloaded \\(529\\)', 'lite'],
  ] as const) {
    it(
      `${status}: one keeps-trying notice in seconds, then the answer once the model is back (${engine})`,
      async () => {
        let down = true;
        const { fake, home } = await fixture.setUp((request) => {
          if (request.kind !== 'conversation') return { text: 'ok' };
          return down
            ? { error: { status, type, message: 'try again later' } }
            : { text: 'answered after all' };
        });
        home.writeConfig({ retryBaseMs: 200, maxRetries: 3 });
        const port = new URL(fake.url).port;
        await troubleThenAnswer({
          env: { ...home.env, NANOCLAW_ENGINE: engine },
          recover: () => {
            down = false;
          },
          notice: new RegExp(`127\\.0\\.0\\.1:${port} ${words}`),
          answer: 'answered after all',
        });
        expect(fake.conversationRequests().length).toBeGreaterThanOrEqual(3);
      },
      E2E_TIMEOUT_MS,
    );
  }

  it(
    'connection refused: the notice names the configured host, then the answer once it listens again',
    async () => {
      const port = await closedPort();
      const home = makeCliHome({
        NANOCLAW_ENGINE: 'claude-code',
        ANTHROPIC_API_KEY: REAL_KEY,
        ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`,
      });
      let revived: FakeModelServer | undefined;
      try {
        home.writeConfig({ retryBaseMs: 200, maxRetries: 3 });
        await troubleThenAnswer({
          env: home.env,
          recover: async () => {
            revived = await startFakeModelServer({
              script: routed(() => ({ text: 'back again' })),
              listen: { port },
            });
          },
          notice: new RegExp(`127\\.0\\.0\\.1:${port} is unreachable \\(connection refused\\)`),
          answer: 'back again',
        });
      } finally {
        await revived?.close();
        home.cleanup();
      }
    },
    E2E_TIMEOUT_MS,
  );

  it(
    'a hung upstream (no headers): unreachable after modelResponseTimeoutMs, then the answer once it answers',
    async () => {
      let down = true;
      const { fake, home } = await fixture.setUp((request) => {
        if (request.kind !== 'conversation') return { text: 'ok' };
        return down ? { hang: true } : { text: 'sorry, I was stuck' };
      });
      home.writeConfig({ retryBaseMs: 200, maxRetries: 3, modelResponseTimeoutMs: 2_000 });
      const port = new URL(fake.url).port;
      await troubleThenAnswer({
        env: home.env,
        recover: () => {
          down = false;
        },
        notice: new RegExp(`127\\.0\\.0\\.1:${port} is unreachable \\(no answer within 2 s\\)`),
        answer: 'sorry, I was stuck',
      });
    },
    E2E_TIMEOUT_MS,
  );
});
