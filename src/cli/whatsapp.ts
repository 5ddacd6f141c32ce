// WhatsApp glue for the CLI: pairing, the linked-account check and the channel
// for `start`. Baileys is imported lazily so commands that never talk to
// WhatsApp (chat, doctor, groups…) do not pay for loading it.

import type { ChannelEvents, Channel } from '../core/channel.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/config.js';
import { pairWhatsApp, readLinkedAccount, type LinkedAccount } from '../channels/whatsapp/auth.js';
import { WhatsAppChannel } from '../channels/whatsapp/channel.js';
import type { SocketFactory } from '../channels/whatsapp/types.js';
import type { Print } from './admin.js';
import { CliError } from './context.js';

const lazyBaileysFactory: SocketFactory = async (authDir) => {
  const { createBaileysSocketFactory } = await import('../channels/whatsapp/socket.js');
  return createBaileysSocketFactory()(authDir);
};

export function linkedAccountOrThrow(config: Config): LinkedAccount {
  const account = readLinkedAccount(config.paths.authDir);
  if (!account) {
    throw new CliError(
      'no WhatsApp account is linked yet: run `nanoclaw auth whatsapp` first (add --phone <number> for a pairing code)',
    );
  }
  return account;
}

export function whatsappChannels(
  config: Config,
  logger: Logger,
  events: ChannelEvents,
  print: Print,
  socketFactory: SocketFactory = lazyBaileysFactory,
): Channel[] {
  linkedAccountOrThrow(config);
  return [
    new WhatsAppChannel({
      authDir: config.paths.authDir,
      events,
      socketFactory,
      logger,
      now: Date.now,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
      random: Math.random,
      assistantName: config.assistantName,
      reconnect: { baseMs: 2_000, maxMs: 5 * 60_000 },
      onStopped: (message) => print(`WhatsApp: ${message}`),
    }),
  ];
}

export async function whatsappAuthCommand(
  config: Config,
  print: Print,
  phoneNumber?: string,
): Promise<number> {
  // The QR heading comes with the QR itself: WhatsApp may not be reachable at all.
  print(phoneNumber ? 'Connecting to WhatsApp to request a pairing code…' : 'Connecting to WhatsApp…');
  const { jid } = await pairWhatsApp({
    authDir: config.paths.authDir,
    phoneNumber,
    socketFactory: lazyBaileysFactory,
    print,
    timeoutMs: 3 * 60_000,
  }).catch((err: unknown) => {
    throw new CliError(`WhatsApp linking failed: ${err instanceof Error ? err.message : String(err)}`);
  });
  print(`Linked as ${jid}. Next: nanoclaw groups add-main, then nanoclaw start.`);
  return 0;
}
