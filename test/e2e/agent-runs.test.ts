// Agent runs end to end: `nanoclaw chat --json` as a child process with the real
// runner, Agent SDK and Claude Code inside real bubblewrap, through the host's
// model broker; only the model is a scripted fake. Covers the credential path,
// trigger gating, follow-ups to a live run, session resume (these three for the
// lite engine too) and crash retries.

import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { requestText } from '../support/fake-model-server.js';
import {
  REAL_KEY,
  answeredToolResult,
  useAgentFixture,
  chatLines,
  lastUserText,
  liveRunIds,
} from './agent-support.js';

const fixture = useAgentFixture();

describe('agent runs through nanoclaw chat --json (bwrap + Claude Code)', () => {
  it('answers with the scripted reply; the real key reaches only the model, never the sandbox', async () => {
    // Every process of the sandbox: env, bwrap's own environ (pid 1), and all /proc/*/environ.
    const command =
      "env; echo '--- pid1'; tr '\\0' '\\n' < /proc/1/environ; echo '--- self'; " +
      "tr '\\0' '\\n' < /proc/self/environ; echo '--- all'; " +
      "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr '\\0' '\\n' < \"$f\" 2>/dev/null; done";
    const { fake, home } = await fixture.setUp((req) => {
      const tool = answeredToolResult(req);
      if (tool) return { text: 'environment checked' };
      if (lastUserText(req).includes('show me your environment'))
        return { toolUse: { name: 'Bash', input: { command, description: 'print the environment' } } };
      return { text: 'unexpected request' };
    });
    const env = { ...home.env, NANOCLAW_MODEL: 'claude-e2e-chosen-model' };
    const result = await runCli(['chat', '--json'], env, '{"text":"show me your environment"}\n');
    expect(result.code, result.stderr).toBe(0);
    expect(chatLines(result.stdout)).toEqual([{ chat: 'local:main', text: 'environment checked' }]);

    const conversation = fake.conversationRequests();
    expect(conversation).toHaveLength(2);
    // The owner's model choice (NANOCLAW_MODEL) is what the agent asks for.
    for (const req of conversation)
      expect((req.body as { model?: string }).model).toBe('claude-e2e-chosen-model');
    // The broker swapped the per-run placeholder for the host's key on every request.
    expect(fake.requests.length).toBeGreaterThanOrEqual(2);
    for (const req of fake.requests) {
      expect(req.headers['x-api-key']).toBe(REAL_KEY);
      expect(req.headers.authorization).toBeUndefined();
    }

    // The command really ran inside the sandbox, and the key was nowhere in it.
    const seen = answeredToolResult(conversation[1]);
    expect(seen?.isError).toBe(false);
    const output = seen?.text ?? '';
    expect(output).toContain('HOME=/home/agent');
    expect(output).toMatch(/--- pid1\n[\s\S]*PATH=/);
    expect(output).toMatch(/--- all\n[\s\S]*runner\.mjs/);
    // What the sandbox had instead: a per-run placeholder that is worthless outside the run.
    expect(output).toMatch(/ANTHROPIC_API_KEY=sk-ant-run-[0-9a-f]{48}/);
    expect(output).not.toContain(REAL_KEY);
    expect(output).not.toContain('REAL-host-credential');
    // No egress allowlist for this group: no egress bridge, so no proxy to point anything at.
    expect(output).not.toMatch(/^(https?|all)_proxy=/im);
    expect(result.stdout + result.stderr).not.toContain(REAL_KEY);
  });

  // The same conversation plumbing for both engines.
  for (const engine of ['claude-code', 'lite'] as const) {
    it(`gates a non-main group on its trigger; the trigger run gets the earlier messages as context (${engine})`, async () => {
      const { fake, home } = await fixture.setUp(
        (req) => (lastUserText(req).includes('ping from main') ? { text: 'pong' } : { text: 'family reply' }),
        engine,
      );
      const added = await runCli(
        ['groups', 'add', 'local:family', '--name', 'Family', '--folder', 'family', '--trigger', '@Andy'],
        home.env,
      );
      expect(added.code).toBe(0);
      const chat = fixture.chat(home.env);
      chat.send({ text: 'we need milk', sender: 'bob', chat: 'local:family' });
      chat.send({ text: 'hey @Andy mid-text does not wake', sender: 'bob', chat: 'local:family' });
      // A barrier: main always wakes. By its reply a run woken by the lines above would
      // have had as long as main's to reach the model.
      chat.send({ text: 'ping from main' });
      await chat.waitFor((lines) => lines.some((l) => l.text === 'pong'));
      expect(fake.conversationRequests().map((r) => requestText(r))).toEqual([
        expect.stringContaining('ping from main'),
      ]);

      chat.send({ text: '@andy add it to the list', sender: 'alice', chat: 'local:family' });
      await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:family'));
      expect(await chat.end()).toBe(0);

      const familyRequests = fake
        .conversationRequests()
        .filter((r) => requestText(r).includes('we need milk'));
      expect(familyRequests).toHaveLength(1);
      const prompt = lastUserText(familyRequests[0]);
      expect(prompt).toMatch(/<message sender="bob" time="[^"]+">we need milk<\/message>/);
      expect(prompt).toContain('hey @Andy mid-text does not wake');
      expect(prompt).toMatch(/<message sender="alice" time="[^"]+">@andy add it to the list<\/message>/);
      expect(prompt.indexOf('we need milk')).toBeLessThan(prompt.indexOf('@andy add it'));
      expect(chat.lines.filter((l) => l.chat === 'local:family')).toEqual([
        { chat: 'local:family', text: 'family reply' },
      ]);
    });

    it(`passes a follow-up to the live run: same process, same conversation (${engine})`, async () => {
      const runsAtRequest: string[][] = [];
      const { fake, home } = await fixture.setUp((req) => {
        // Sampled as each request arrives: which run directories exist right now.
        runsAtRequest.push(liveRunIds(home));
        const text = lastUserText(req);
        if (text.includes('second question')) return { text: 'second answer' };
        if (text.includes('first question')) return { text: 'first answer' };
        return { text: 'unexpected request' };
      }, engine);
      const chat = fixture.chat(home.env);
      chat.send({ text: 'first question' });
      await chat.waitFor((lines) => lines.length >= 1);
      chat.send({ text: 'second question' });
      await chat.waitFor((lines) => lines.length >= 2);
      expect(await chat.end()).toBe(0);
      expect(chat.lines.map((l) => l.text)).toEqual(['first answer', 'second answer']);

      const [first, second, ...rest] = fake.conversationRequests();
      expect(rest).toEqual([]);
      // One run directory, the same one, at both requests: a second spawn would have had a
      // new run id (and the first run's directory is removed when its process ends).
      expect(runsAtRequest).toHaveLength(2);
      expect(runsAtRequest[0]).toHaveLength(1);
      expect(runsAtRequest[1]).toEqual(runsAtRequest[0]);
      // And Claude Code carried the first exchange into the second request of the same session.
      const text = requestText(second);
      expect(text).toContain('first question');
      expect(text).toContain('first answer');
      expect(text).toContain('second question');
      if (engine === 'claude-code') {
        expect(second.headers['x-claude-code-session-id']).toBe(first.headers['x-claude-code-session-id']);
      }
    });

    it(`resumes the session in the next run (a separate chat invocation) (${engine})`, async () => {
      const runsAtRequest: string[][] = [];
      const { fake, home } = await fixture.setUp((req) => {
        runsAtRequest.push(liveRunIds(home));
        const text = lastUserText(req);
        if (text.includes('What was the secret word?')) return { text: 'resumed fine' };
        if (text.includes('Remember the secret word')) return { text: 'The secret word is marmalade.' };
        return { text: 'unexpected request' };
      }, engine);
      const one = await runCli(['chat', '--json'], home.env, '{"text":"Remember the secret word"}\n');
      expect(chatLines(one.stdout), one.stderr).toEqual([
        { chat: 'local:main', text: 'The secret word is marmalade.' },
      ]);
      const two = await runCli(['chat', '--json'], home.env, '{"text":"What was the secret word?"}\n');
      expect(chatLines(two.stdout), two.stderr).toEqual([{ chat: 'local:main', text: 'resumed fine' }]);

      const [first, second, ...rest] = fake.conversationRequests();
      expect(rest).toEqual([]);
      expect(runsAtRequest[1]).not.toEqual(runsAtRequest[0]);
      expect(requestText(first)).not.toContain('marmalade');
      const text = requestText(second);
      expect(text).toContain('Remember the secret word');
      expect(text).toContain('The secret word is marmalade.');
      expect(text).toContain('What was the secret word?');
    });
  }

  it('retries a failing run with backoff, saying after the first try that it keeps trying, then tells the chat once', async () => {
    const runsAtRequest: string[][] = [];
    const { fake, home } = await fixture.setUp(() => {
      runsAtRequest.push(liveRunIds(home));
      // A server error is worth retrying (the router's backoff); the header makes Claude Code
      // give up on its own retries at once, so the runner ends with done{error}.
      return {
        error: {
          status: 500,
          type: 'api_error',
          message: 'scripted refusal',
          headers: { 'x-should-retry': 'false' },
        },
      };
    });
    home.writeConfig({ retryBaseMs: 200, maxRetries: 2 });
    const result = await runCli(['chat', '--json'], home.env, '{"text":"please fail"}\n', 60_000);
    expect(result.code, result.stderr).toBe(0);

    // Three runs (first try + maxRetries), each a separate process that reached the model.
    const runs = [...new Set(runsAtRequest.flat())];
    expect(runs).toHaveLength(3);
    for (const req of fake.conversationRequests()) expect(requestText(req)).toContain('please fail');
    const lines = chatLines(result.stdout);
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => l.chat)).toEqual(['local:main', 'local:main']);
    // A server error passes with time: the chat hears so once, after the first failed try.
    expect(lines[0].text).toMatch(
      /^The model isn't answering right now: 127\.0\.0\.1:\d+ had an internal error \(500: scripted refusal\)\. I'll keep trying/,
    );
    expect(lines[1].text).toMatch(/couldn't process your last messages after several tries/);
    expect(lines[1].text).toContain('scripted refusal');
    expect(result.stderr.match(/unanswered messages will be retried/g)).toHaveLength(3);
  });
});
