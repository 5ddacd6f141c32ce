// The crash drill with the real agent: Claude Code in bwrap, driven by the
// scripted fake model, killed at random moments (SIGKILL, SIGTERM, around the
// reply). Fewer kills than the echo drill (each life starts Claude Code), the
// same checks: every accepted message answered exactly once, in order, no
// sandbox left behind, the database intact. FAULT_SEED replays a run.
import { describe, it } from 'vitest';
import type { RecordedRequest } from '../support/fake-model-server.js';
import { runCrashDrill } from '../support/crash-drill.js';
import { expectNothingLost } from './drill-verdict.js';
import { useAgentFixture } from './agent-support.js';

const KILLS = Number(process.env.FAULT_AGENT_KILLS ?? 6);
const SEED = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const NONCE = /\bM\d+x\d+\b/g;

const fixture = useAgentFixture();

/** The text of the user messages after the model's last answer: the prompts this request answers. */
function pendingUserText(request: RecordedRequest): string {
  const messages =
    (request.body as { messages?: Array<{ role: string; content: unknown }> } | null)?.messages ?? [];
  const lastAnswer = messages.map((m) => m.role).lastIndexOf('assistant');
  return messages
    .slice(lastAnswer + 1)
    .filter((m) => m.role === 'user')
    .flatMap((m) =>
      typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content as unknown[]),
    )
    .map((block) => {
      const b = block as { type?: string; text?: unknown };
      return b.type === 'text' && typeof b.text === 'string' ? b.text : '';
    })
    .join('\n');
}

describe('crash drill with the real agent (SPEC §4.1)', () => {
  it(`answers every accepted message exactly once across ${KILLS} random kills (seed ${SEED})`, async () => {
    // The model answers with the nonces of the prompts it was given.
    const { home } = await fixture.setUp((request) => {
      return {
        text: `answer: ${(pendingUserText(request).match(NONCE) ?? []).join(' ')}`,
      };
    });
    home.writeConfig({ retryBaseMs: 200, shutdownGraceMs: 3000 });
    const folders = [`fa${SEED.toString(36)}a`, `fa${SEED.toString(36)}b`];
    const report = await runCrashDrill({
      home,
      seed: SEED,
      kills: KILLS,
      folders,
      maxKillDelayMs: 4000,
      lifeTimeoutMs: 120_000,
    });
    expectNothingLost(report, 0);
  }, 900_000);
});
