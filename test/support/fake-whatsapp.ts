// The WhatsApp channel as tests and benches build it: linked (a creds file as
// `nanoclaw auth whatsapp` leaves it) and talking to the fake Baileys socket,
// with fast reconnects and fixed jitter.
import fs from 'node:fs';
import path from 'node:path';
import { WhatsAppChannel } from '../../src/channels/whatsapp/channel.js';
import type { Config } from '../../src/config/config.js';
import type { ChannelEvents } from '../../src/core/channel.js';
import { silentLogger } from '../../src/core/logger.js';
import type { FakeBaileys } from './fake-baileys.js';

/** Writes the keys of a linked account (the owner 15550001111) into the config's auth dir. */
export function linkFakeAccount(config: Config): void {
  fs.mkdirSync(config.paths.authDir, { recursive: true });
  fs.writeFileSync(
    path.join(config.paths.authDir, 'creds.json'),
    JSON.stringify({ me: { id: '15550001111:7@s.whatsapp.net' }, account: {} }),
  );
}

export function fakeWhatsAppChannel(
  config: Config,
  events: ChannelEvents,
  fake: FakeBaileys,
): WhatsAppChannel {
  return new WhatsAppChannel({
    authDir: config.paths.authDir,
    events,
    socketFactory: fake.factory,
    logger: silentLogger(),
    now: Date.now,
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
    random: () => 0.5,
    assistantName: config.assistantName,
    reconnect: { baseMs: 10, maxMs: 50 },
  });
}
