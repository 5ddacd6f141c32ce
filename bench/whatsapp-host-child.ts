// Child process for the WhatsApp host benchmarks: the real `start` host with
// Baileys loaded, but its socket replaced by the fake (no WhatsApp servers).
// Prints nothing itself; the parent watches the "host ready" log line.

import { settleHeapWhenIdle } from '../src/cli/memory-settings.js';
import { FakeBaileys } from '../test/support/fake-baileys.js';
import { loadCliConfig, makeLogger } from '../src/cli/context.js';
import { runHost } from '../src/cli/run-host.js';
import { runInThisHost } from '../src/cli/commands/index.js';
import { whatsappChannels } from '../src/cli/whatsapp.js';
import type { SocketFactory } from '../src/channels/whatsapp/types.js';

// As bin/nanoclaw.mjs does before anything else loads.
settleHeapWhenIdle();
const fake = new FakeBaileys(undefined, (socket) => setImmediate(() => socket.open()));
// Baileys loads for real, where the product loads it: in the channel's first
// connect, before "host ready". So its memory and start-up cost are counted.
const factory: SocketFactory = async (authDir) => {
  await import('../src/channels/whatsapp/socket.js');
  return fake.factory(authDir);
};
const config = loadCliConfig();
const logger = makeLogger('info');
await runHost({
  config,
  logger,
  env: process.env,
  errors: process.stderr,
  runCommand: runInThisHost,
  makeChannels: (events) => whatsappChannels(config, logger, events, () => undefined, factory),
});
