// `nanoclaw runs` after a real agent run: the runner and each engine (Claude Code
// through the Agent SDK, and lite) in bwrap, through the host's model broker, with the scripted fake model. The
// run's tokens are the broker's usage rows for that run id, summed.

import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { chatLines, openHomeStore, useAgentFixture } from './agent-support.js';

const fixture = useAgentFixture();

describe('nanoclaw runs after an agent run', () => {
  for (const engine of ['claude-code', 'lite'] as const)
    it(`lists the run as ok with the tokens the broker recorded for it (${engine})`, async () => {
      const { home } = await fixture.setUp(
        () => ({
          text: 'hi there',
          usage: { input_tokens: 321, output_tokens: 45 },
        }),
        engine,
      );
      const result = await runCli(['chat', '--json'], home.env, '{"text":"hello"}\n');
      expect(result.code, result.stderr).toBe(0);
      expect(chatLines(result.stdout)).toEqual([{ chat: 'local:main', text: 'hi there' }]);

      const listed = await runCli(['runs', '--json'], home.env);
      expect(listed.code, listed.stderr).toBe(0);
      const runs = listed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(runs).toEqual([expect.objectContaining({ group: 'main', kind: 'messages', outcome: 'ok' })]);

      const store = openHomeStore(home);
      try {
        const usage = store.usageForRun(runs[0].runId);
        expect(usage.inputTokens).toBeGreaterThanOrEqual(321);
        expect(runs[0].tokens).toEqual(usage);
      } finally {
        store.close();
      }
    });
});
