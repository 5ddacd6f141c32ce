// Trying `chat` first must not block WhatsApp (issue 10): the terminal's main
// group moves to the self-chat when `start` finds a linked account, keeping its
// memory (the agent session), and `chat` afterwards still reaches that same
// agent as a console of the running host. The real host code in this process
// with the fake Baileys socket, real SQLite and the real bwrap sandbox (`echo`).
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { firstRunSetup, runInThisHost } from '../../src/cli/commands/index.js';
import { loadCliConfig } from '../../src/cli/context.js';
import { chatCommand, runHost } from '../../src/cli/run-host.js';
import { whatsappChannels } from '../../src/cli/whatsapp.js';
import { silentLogger } from '../../src/core/logger.js';
import { openStore } from '../../src/store/store.js';
import { FakeBaileys } from '../support/fake-baileys.js';
import { assertBuilt, makeCliHome, type CliHome } from '../support/cli.js';
import { until } from '../support/until.js';

const SELF = '15550001111@s.whatsapp.net';

let home: CliHome;
beforeAll(() => assertBuilt());
afterEach(() => home?.cleanup());

/** `nanoclaw chat --json` in this process: the given lines in, the printed lines out. */
async function chatJson(env: NodeJS.ProcessEnv, lines: string[]): Promise<{ code: number; out: string[] }> {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const done = chatCommand({
    env,
    json: true,
    runCommand: runInThisHost,
    input,
    output,
    errors: new PassThrough(),
  });
  input.end(lines.map((l) => `${JSON.stringify({ text: l })}\n`).join(''));
  const code = await done;
  return { code, out: text.trim().split('\n').filter(Boolean) };
}

function mainSession(env: NodeJS.ProcessEnv): { jid: string | undefined; session: string | undefined } {
  const store = openStore(loadCliConfig(env).paths.dbPath);
  try {
    return { jid: store.listGroups().find((g) => g.isMain)?.jid, session: store.getSession('main') };
  } finally {
    store.close();
  }
}

describe('chat first, then WhatsApp', () => {
  it('the self-chat becomes main with the terminal chat memory, and chat still reaches it', async () => {
    home = makeCliHome();
    const first = await chatJson(home.env, ['remember the blue door']);
    expect(first.code).toBe(0);
    expect(first.out.join('\n')).toContain('echo: remember the blue door');
    const before = mainSession(home.env);
    expect(before.jid).toBe('local:main');
    expect(before.session).toMatch(/^echo-session-/);

    // WhatsApp gets linked (the keys `nanoclaw auth whatsapp` writes), then `start`.
    const config = loadCliConfig(home.env);
    fs.mkdirSync(config.paths.authDir, { recursive: true });
    fs.writeFileSync(
      path.join(config.paths.authDir, 'creds.json'),
      JSON.stringify({ me: { id: '15550001111:7@s.whatsapp.net' }, account: {} }),
    );
    const fake = new FakeBaileys(undefined, (socket) => setImmediate(() => socket.open()));
    const printed: string[] = [];
    const logger = silentLogger();
    let stopHost: () => void = () => undefined;
    const stopped = new Promise<number>((resolve) => (stopHost = () => resolve(0)));
    const hostDone = runHost({
      config,
      logger,
      env: home.env,
      errors: new PassThrough(),
      runCommand: runInThisHost,
      setup: () => firstRunSetup(config, (line) => printed.push(line)),
      makeChannels: (events) => whatsappChannels(config, logger, events, () => undefined, fake.factory),
      untilDone: () => stopped,
    });
    try {
      await until(() => fs.existsSync(path.join(config.paths.dataDir, 'control', 'host.sock')), 20_000);
      expect(printed.join('\n')).toContain(`Your self-chat ${SELF} is now the main group`);
      expect(mainSession(home.env).jid).toBe(SELF);

      // The owner writes in the self-chat: main answers there, resuming the terminal's session.
      await until(() => fake.latest?.listenerCount('messages.upsert') > 0, 20_000);
      fake.latest.upsert([
        {
          key: { remoteJid: SELF, id: 'wa-1', fromMe: true },
          message: { conversation: 'what colour was the door?' },
          messageTimestamp: Math.floor(Date.now() / 1000),
          pushName: 'Owner',
        },
      ]);
      await until(
        () => fake.latest.sent.some((s) => s.content.text.includes('what colour was the door?')),
        30_000,
      );
      const answer = fake.latest.sent.find((s) => s.content.text.includes('what colour was the door?'));
      expect(answer?.jid).toBe(SELF);
      expect(answer?.content.text).toContain(`resumed ${before.session}`);

      // `chat` now attaches to this host: same main, same agent; WhatsApp gets the answer too.
      const attached = await chatJson(home.env, ['and from the terminal?']);
      expect(attached.code).toBe(0);
      const line = attached.out.map((l) => JSON.parse(l) as { chat: string; text: string }).at(-1);
      expect(line?.chat).toBe(SELF);
      expect(line?.text).toContain('echo: and from the terminal?');
      expect(fake.latest.sent.some((s) => s.content.text.includes('echo: and from the terminal?'))).toBe(
        true,
      );
    } finally {
      stopHost();
      expect(await hostDone).toBe(0);
    }
  }, 90_000);
});
