// Nothing lost, proven by fault injection (SPEC §4.1): the real CLI host with
// the real sandbox and the echo engine is killed at random moments, again and
// again; every accepted message and task is answered exactly once, in order,
// with no orphan sandbox and an intact database. Seeded: a failure prints the
// seed, and FAULT_SEED=<seed> replays it. FAULT_KILLS sets the number of kills.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, makeCliHome, runCli, type CliHome } from '../support/cli.js';
import { runCrashDrill } from '../support/crash-drill.js';

const KILLS = Number(process.env.FAULT_KILLS ?? 100);
const SEED = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));

let home: CliHome;
beforeAll(() => assertBuilt());
afterEach(() => home?.cleanup());

describe('crash drill (SPEC §4.1, §5.5, §6.1)', () => {
  it(`answers every accepted message and task exactly once across ${KILLS} random kills (seed ${SEED})`, async () => {
    home = makeCliHome();
    // Quick retries so a drill of 100 lives stays short; the grace is long enough for a
    // clean SIGTERM and short enough that SIGTERM-then-wait does not stall the drill.
    home.writeConfig({ retryBaseMs: 100, shutdownGraceMs: 1500 });
    // Folder names no other test uses: the drill finds leftover sandboxes by them.
    const folders = [`fi${SEED.toString(36)}a`, `fi${SEED.toString(36)}b`];
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
      taskEvery: 7,
    });
    const summary = `seed ${SEED} (replay: FAULT_SEED=${SEED}): ${report.accepted.length} accepted, lost ${JSON.stringify(report.lost)}, duplicated ${JSON.stringify(report.duplicated)}, out of order ${JSON.stringify(report.outOfOrder)}`;
    expect(report.accepted.length, summary).toBeGreaterThan(KILLS);
    expect(report.lost, summary).toEqual([]);
    expect(report.duplicated, summary).toEqual([]);
    expect(report.outOfOrder, summary).toEqual([]);
    expect(report.integrity, summary).toBe('ok');
    expect(report.orphans, summary).toEqual([]);
  }, 900_000);
});
