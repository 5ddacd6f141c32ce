// The `nanoclaw` command line: parses the subcommand and hands over to the
// module that does the work. Errors meant for the user are CliErrors (a clear
// message and an exit code); anything else is a bug and prints its stack.

import { parseArgs } from 'node:util';
import { auditCommand, groupsCommand, tasksCommand, usageCommand, addGroup, type Print } from './admin.js';
import { CliError, loadCliConfig, makeLogger } from './context.js';
import { backupCommand, restoreCommand } from './backup.js';
import { doctorCommand } from './doctor.js';
import { chatOptions, runHost } from './run-host.js';
import { parseRunsArgs, runsCommand, RUNS_USAGE } from './runs.js';
import { asStoreError, StoreOpenError, StoreVersionError } from '../store/errors.js';
import { openStore } from '../store/store.js';
import type { Config } from '../config/config.js';
import type { StoreApi } from '../store/api.js';
import { whatsappAuthCommand, whatsappChannels, linkedAccountOrThrow } from './whatsapp.js';
import { readLinkedAccount } from '../channels/whatsapp/auth.js';

const USAGE = `usage: nanoclaw <command>

  start                         run the assistant with its WhatsApp channel
  chat [--json]                 talk to the main group from this terminal (JSON lines with --json)
  doctor                        check node, database, sandbox, credential, WhatsApp link
  auth whatsapp [--phone N]     link a WhatsApp account (QR code, or a pairing code with --phone)
  groups list|add|add-main|remove|budget|edit
  tasks list|pause|resume|cancel <id>
  audit [--since 24h] [--group F] [--action A] [--json]
  usage [--since 7d] [--group F] [--json]
  runs [--group F] [--limit N] [--json]   the record of agent runs, newest first`;

function withStore<T>(config: Config, fn: (store: StoreApi) => T): T {
  const store = openStore(config.paths.dbPath);
  try {
    return fn(store);
  } catch (err) {
    throw asStoreError(err, config.paths.dbPath);
  } finally {
    store.close();
  }
}

/**
 * On a terminal, a first `start` links WhatsApp and registers the self-chat as
 * main, so one command takes a fresh install to a running assistant. Without a
 * terminal it only says what to run (no prompt loop in a service).
 */
async function firstRunSetup(config: Config, print: Print): Promise<void> {
  if (readLinkedAccount(config.paths.authDir)) return;
  if (!process.stdin.isTTY) linkedAccountOrThrow(config);
  print('No WhatsApp account is linked yet; linking one now.');
  await whatsappAuthCommand(config, print);
  const account = linkedAccountOrThrow(config);
  withStore(config, (store) => {
    if (store.listGroups().some((g) => g.isMain)) return;
    addGroup(config, store, mainGroupFor(config, account.jid));
    print(`Registered your self-chat ${account.jid} as the main group.`);
  });
}

function mainGroupFor(config: Config, jid: string) {
  return {
    jid,
    name: 'Main (self-chat)',
    folder: 'main',
    trigger: `@${config.assistantName}`,
    requiresTrigger: false,
    isMain: true,
  };
}

export async function main(argv: string[]): Promise<number> {
  const print: Print = (line) => process.stdout.write(`${line}\n`);
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start': {
        const config = loadCliConfig();
        const logger = makeLogger(config.logLevel);
        return await runHost({
          config,
          logger,
          env: process.env,
          errors: process.stderr,
          setup: () => firstRunSetup(config, print),
          makeChannels: (events) => whatsappChannels(config, logger, events, print),
        });
      }
      case 'chat': {
        const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } } });
        const config = loadCliConfig();
        // The terminal is the conversation: only warnings unless LOG_LEVEL asks for more.
        const logger = makeLogger(process.env.LOG_LEVEL ? config.logLevel : 'warn');
        return await runHost(
          chatOptions(
            { config, logger, env: process.env, errors: process.stderr },
            { input: process.stdin, output: process.stdout, json: values.json },
          ),
        );
      }
      case 'backup':
        return await backupCommand(rest, loadCliConfig(), print, () => new Date());
      case 'restore':
        return await restoreCommand(rest, loadCliConfig(), print, () => new Date());
      case 'doctor':
        return await doctorCommand(loadCliConfig(), print);
      case 'auth': {
        if (rest[0] !== 'whatsapp') throw new CliError('usage: nanoclaw auth whatsapp [--phone <number>]', 2);
        const { values } = parseArgs({ args: rest.slice(1), options: { phone: { type: 'string' } } });
        return await whatsappAuthCommand(loadCliConfig(), print, values.phone);
      }
      case 'groups': {
        const config = loadCliConfig();
        if (rest[0] === 'add-main') {
          const account = linkedAccountOrThrow(config);
          withStore(config, (store) => addGroup(config, store, mainGroupFor(config, account.jid)));
          print(`registered your self-chat ${account.jid} as the main group`);
          return 0;
        }
        withStore(config, (store) => groupsCommand(rest, config, store, print));
        return 0;
      }
      case 'tasks': {
        const config = loadCliConfig();
        withStore(config, (store) => tasksCommand(rest, store, print));
        return 0;
      }
      case 'audit': {
        const config = loadCliConfig();
        withStore(config, (store) => auditCommand(rest, store, print));
        return 0;
      }
      case 'usage': {
        const config = loadCliConfig();
        withStore(config, (store) => usageCommand(rest, store, print));
        return 0;
      }
      case 'runs': {
        const options = parseRunsArgs(rest);
        if (options === null) {
          print(RUNS_USAGE);
          return 0;
        }
        const config = loadCliConfig();
        withStore(config, (store) => runsCommand(options, store, print));
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        print(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new CliError(`unknown command "${command}"\n${USAGE}`, 2);
    }
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof StoreOpenError) {
      process.stderr.write(`nanoclaw: ${err.message}\n`);
      return 1;
    }
    if (err instanceof StoreVersionError) {
      process.stderr.write(`nanoclaw: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
