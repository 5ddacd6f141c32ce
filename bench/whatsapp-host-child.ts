// Child process for the WhatsApp host benchmarks: the real `start` host with
// Baileys loaded, but its socket replaced by the fake (no WhatsApp servers).
// Prints nothing itself; the parent watches the "host ready" log line.

import { FakeBaileys } from '../test/support/fake-baileys.js';
import { loadCliConfig, makeLogger } from '../src/cli/context.js';
import { runHost } from '../src/cli/run-host.js';
import { runInThisHost } from '../src/cli/commands/index.js';
import { whatsappChannels } from '../src/cli/whatsapp.js';

// Load Baileys for real so its memory and start-up cost are counted.
await import('../src/channels/whatsapp/socket.js');
const fake = new FakeBaileys(undefined, (socket) => setImmediate(() => socket.open()));
const config = loadCliConfig();
const logger = makeLogger('info');
await runHost({
  config,
  logger,
  env: process.env,
  errors: process.stderr,
  runCommand: runInThisHost,
  makeChannels: (events) => whatsappChannels(config, logger, events, () => undefined, fake.factory),
});
