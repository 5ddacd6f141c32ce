// The per-group sender allowlist end to end (SPEC §2.5): set with `nanoclaw
// groups edit`, honoured by the running `chat --json` host with the real agent.
// A non-listed sender never reaches the model; its message is context for the
// next listed sender's turn.

import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { requestText } from '../support/fake-model-server.js';
import { lastUserText, useAgentFixture } from './agent-support.js';

const fixture = useAgentFixture();

describe('sender allowlist through nanoclaw groups edit and chat --json', () => {
  for (const engine of ['claude-code', 'lite'] as const)
    it(`does not answer a non-listed sender; the next listed sender gets that message as context (${engine})`, async () => {
      const { fake, home } = await fixture.setUp((req) => {
        const text = lastUserText(req);
        if (text.includes('ping from main')) return { text: 'pong' };
        // Echo what the agent was shown, so the answer itself proves the context.
        if (text.includes('what did mallory ask')) {
          return { text: `club reply; saw pizza: ${text.includes('order pizza for everyone')}` };
        }
        return { text: 'unexpected request' };
      }, engine);
      const added = await runCli(
        ['groups', 'add', 'local:club', '--name', 'Club', '--folder', 'club', '--trigger', '@Andy'],
        home.env,
      );
      expect(added.code, added.stderr).toBe(0);
      const edited = await runCli(['groups', 'edit', 'local:club', '--allow', 'local:alice'], home.env);
      expect(edited.code, edited.stderr).toBe(0);
      expect(edited.stdout).toContain('local:club: allow local:alice');
      const listed = await runCli(['groups', 'list'], home.env);
      expect(listed.stdout).toMatch(/^local:club +club +.* +allow local:alice /m);

      const chat = fixture.chat(home.env);
      chat.send({ text: '@Andy order pizza for everyone', sender: 'mallory', chat: 'local:club' });
      // A barrier: main always wakes. By its reply a run woken by mallory would have
      // had as long as main's to reach the model.
      chat.send({ text: 'ping from main' });
      await chat.waitFor((lines) => lines.some((l) => l.text === 'pong'));
      expect(fake.conversationRequests().map((r) => requestText(r))).toEqual([
        expect.stringContaining('ping from main'),
      ]);

      chat.send({ text: '@Andy what did mallory ask?', sender: 'alice', chat: 'local:club' });
      await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:club'));
      expect(await chat.end()).toBe(0);

      expect(chat.lines.filter((l) => l.chat === 'local:club')).toEqual([
        { chat: 'local:club', text: 'club reply; saw pizza: true' },
      ]);
      const clubRequests = fake.conversationRequests().filter((r) => requestText(r).includes('order pizza'));
      expect(clubRequests).toHaveLength(1);
      const prompt = lastUserText(clubRequests[0]);
      expect(prompt).toMatch(
        /<message sender="mallory" time="[^"]+">@Andy order pizza for everyone<\/message>/,
      );
      expect(prompt.indexOf('order pizza')).toBeLessThan(prompt.indexOf('what did mallory ask'));
    });

  it('explains groups edit with --help and refuses a bad sender in one line', async () => {
    const { home } = await fixture.setUp(() => ({ text: 'unused' }));
    const help = await runCli(['groups', 'edit', '--help'], home.env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--allow-everyone');
    const added = await runCli(
      ['groups', 'add', 'local:club', '--name', 'Club', '--folder', 'club'],
      home.env,
    );
    expect(added.code, added.stderr).toBe(0);
    const bad = await runCli(['groups', 'edit', 'local:club', '--allow', 'mallory'], home.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/sender "mallory" is invalid: use .*"local:alice"/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const both = await runCli(
      ['groups', 'edit', 'local:club', '--allow', 'local:a', '--allow-everyone'],
      home.env,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toBe(
      'nanoclaw groups edit: give either --allow or --allow-everyone, not both; try nanoclaw groups edit --help\n',
    );
    const everyone = await runCli(['groups', 'edit', 'local:club', '--allow-everyone'], home.env);
    expect(everyone.stdout).toContain('local:club: allow everyone');
  });
});
