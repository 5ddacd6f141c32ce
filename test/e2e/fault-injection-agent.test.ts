// The crash drill with the real agent: Claude Code in bwrap, driven by the
// scripted fake model, killed at random moments (SIGKILL, SIGTERM, around the
// reply). Fewer kills than the echo drill (each life starts Claude Code), the
// same checks: every accepted message answered exactly once, in order, no
// sandbox left behind, the database intact. FAULT_SEED replays a run.
import { describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../support/fake-model-server.js';
import { runCli } from '../support/cli.js';
import { runCrashDrill } from '../support/crash-drill.js';
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
    for (const folder of folders) {
      const added = await runCli(
        ['groups', 'add', `local:${folder}`, '--name', folder, '--folder', folder, '--no-trigger'],
        home.env,
      );
      expect(added.code, added.stderr).toBe(0);
    }
    const report = await runCrashDrill({
      home,
      seed: SEED,
      kills: KILLS,
      chats: folders.map((folder) => `local:${folder}`),
      folders,
      maxKillDelayMs: 4000,
      lifeTimeoutMs: 120_000,
    });
    const summary = `seed ${SEED} (replay: FAULT_SEED=${SEED}): ${report.accepted.length} accepted, lost ${JSON.stringify(report.lost)}, duplicated ${JSON.stringify(report.duplicated)}, out of order ${JSON.stringify(report.outOfOrder)}`;
    expect(report.accepted.length, summary).toBeGreaterThan(0);
    expect(report.lost, summary).toEqual([]);
    expect(report.duplicated, summary).toEqual([]);
    expect(report.outOfOrder, summary).toEqual([]);
    expect(report.integrity, summary).toBe('ok');
    expect(report.orphans, summary).toEqual([]);
  }, 900_000);
});
