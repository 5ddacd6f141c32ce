// Nothing lost, proven by fault injection (SPEC §4.1): the real CLI host with
// the real sandbox and the echo engine is killed at random moments, again and
// again; every accepted message and task is answered exactly once, in order,
// with no orphan sandbox and an intact database. Seeded: a failure prints the
// seed, and FAULT_SEED=<seed> replays it. FAULT_KILLS sets the number of kills.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ChatSession, makeCliHome, runCli, type CliHome } from '../support/cli.js';
import { runCrashDrill } from '../support/crash-drill.js';
import { expectNothingLost } from './drill-verdict.js';
import { chatLines } from './agent-support.js';

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
    const report = await runCrashDrill({
      home,
      seed: SEED,
      kills: KILLS,
      folders,
      taskEvery: 7,
    });
    // How many lives accept messages before their kill depends on the machine's speed (a loaded
    // one starts slower): the floor only shows the drill exercised the host.
    expectNothingLost(report, KILLS / 4);
  }, 900_000);

  it('answers 1 MB and 10 MB messages once, across a kill, and the chat stays answerable', async () => {
    home = makeCliHome();
    home.writeConfig({ retryBaseMs: 100 });
    const big = (tag: string, bytes: number): string => `${tag} ${'z'.repeat(bytes)} ${tag}-end`;
    // The 10 MB message is stored, then the host dies before answering it.
    const first = new ChatSession(home.env);
    first.send({ text: big('ONE-MB', 1 << 20) });
    await first.waitFor((lines) => lines.some((l) => l.text.includes('ONE-MB')), 60_000);
    first.send({ text: `/sleep 3000\n${big('TEN-MB', 10 << 20)}` });
    await first.waitFor(() => fs.existsSync(inboxFile(home!, 'TEN-MB')), 60_000);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await runCli(['chat', '--json'], home.env, '{"text":"small one"}\n', 120_000);
    expect(second.code, second.stderr).toBe(0);
    const texts = [...first.lines, ...chatLines(second.stdout)].map((l) => l.text);
    expect(
      texts.filter((t) => t.includes('ONE-MB ')),
      'the 1 MB message',
    ).toHaveLength(1);
    expect(
      texts.filter((t) => t.includes('TEN-MB ')),
      'the 10 MB message',
    ).toHaveLength(1);
    expect(
      texts.filter((t) => t.includes('small one')),
      'the next message',
    ).toHaveLength(1);
    // The prompt carried a cut with a marker; the agent can read the whole text.
    expect(texts.find((t) => t.includes('TEN-MB '))).toMatch(/message cut: \d+ bytes in all/);
    expect(fs.statSync(inboxFile(home, 'TEN-MB')).size).toBeGreaterThan(10 << 20);
  }, 300_000);
});

/** The saved full text of the message that starts with `tag`, in main's inbox. */
function inboxFile(h: CliHome, tag: string): string {
  const inbox = path.join(h.dir, 'groups', 'main', 'inbox');
  if (!fs.existsSync(inbox)) return path.join(inbox, 'missing');
  for (const name of fs.readdirSync(inbox)) {
    const file = path.join(inbox, name);
    const fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(64);
    fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    if (head.toString().includes(`${tag} `)) return file;
  }
  return path.join(inbox, 'missing');
}
