// The table of `nanoclaw` subcommands: each has a name, a one-line summary for
// the top-level help, its own usage for `--help`, and a run function that
// returns an exit code. main.ts only dispatches over this table.

import type { Config } from '../../config/config.js';
import type { StoreApi } from '../../store/api.js';
import { GROUPS_EDIT_USAGE, type Print } from '../admin.js';
import { BACKUP_USAGE, RESTORE_USAGE } from '../backup.js';
import { loadCliConfig, makeLogger } from '../context.js';
import { RUNS_USAGE } from '../runs.js';
import { parseCommandArgs, usageError } from './args.js';
import { TASKS_SUBCOMMAND_USAGE, TASKS_USAGE } from './tasks.js';

// What a command does is loaded when it runs (the bundle splits each of these into a
// chunk of its own): `chat` never loads the WhatsApp channel or the doctor, and a
// one-shot command never loads the host. The table itself stays static.
const load = {
  admin: () => import('../admin.js'),
  auth: () => import('../../channels/whatsapp/auth.js'),
  backup: () => import('../backup.js'),
  doctor: () => import('../doctor.js'),
  runHost: () => import('../run-host.js'),
  runs: () => import('../runs.js'),
  store: () => import('../../store/store.js'),
  storeErrors: () => import('../../store/errors.js'),
  tasks: () => import('./tasks.js'),
  whatsapp: () => import('../whatsapp.js'),
};

export interface CommandIo {
  print: Print;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** `--help` after one of these first arguments prints its own usage. */
  subcommandUsage?: Record<string, string>;
  run(args: string[], io: CommandIo): Promise<number>;
}

async function withStore<T>(config: Config, fn: (store: StoreApi) => T): Promise<T> {
  const [{ openStore }, { asStoreError }] = await Promise.all([load.store(), load.storeErrors()]);
  const store = openStore(config.paths.dbPath);
  try {
    return fn(store);
  } catch (err) {
    throw asStoreError(err, config.paths.dbPath);
  } finally {
    store.close();
  }
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

/**
 * On a terminal, a first `start` links WhatsApp and registers the self-chat as
 * main, so one command takes a fresh install to a running assistant. Without a
 * terminal it only says what to run (no prompt loop in a service).
 */
async function firstRunSetup(config: Config, print: Print): Promise<void> {
  const { readLinkedAccount } = await load.auth();
  if (readLinkedAccount(config.paths.authDir)) return;
  const { linkedAccountOrThrow, whatsappAuthCommand } = await load.whatsapp();
  if (!process.stdin.isTTY) linkedAccountOrThrow(config);
  print('No WhatsApp account is linked yet; linking one now.');
  await whatsappAuthCommand(config, print);
  const account = linkedAccountOrThrow(config);
  const { addGroup } = await load.admin();
  await withStore(config, (store) => {
    if (store.listGroups().some((g) => g.isMain)) return;
    addGroup(config, store, mainGroupFor(config, account.jid));
    print(`Registered your self-chat ${account.jid} as the main group.`);
  });
}

const GROUPS_SUBCOMMAND_USAGE: Record<string, string> = {
  list: `usage: nanoclaw groups list [--group FOLDER] [--json]

  --group FOLDER   only the group with this folder
  --json           one JSON object per line`,
  add: `usage: nanoclaw groups add <jid> --name NAME --folder FOLDER [--trigger @NAME] [--no-trigger] [--main]

  e.g. nanoclaw groups add 120363012345678901@g.us --name Family --folder family --trigger @Andy`,
  'add-main': `usage: nanoclaw groups add-main

  Registers the linked WhatsApp account's self-chat as the main group.`,
  remove: `usage: nanoclaw groups remove <jid>

  Unregisters a group; its folder and messages are kept.`,
  budget: `usage: nanoclaw groups budget <jid> <tokens|none>

  Sets the group's daily token budget (UTC day), e.g. 200000; none removes it.`,
  edit: GROUPS_EDIT_USAGE,
};

const AUDIT_USAGE = `usage: nanoclaw audit [--since 24h] [--group FOLDER] [--action A] [--limit N] [--json]

  --since T        an ISO time or a duration (30m, 24h, 7d)
  --group FOLDER   only this group's records
  --action A       only this action, e.g. egress
  --limit N        at most N records (default 1000)
  --json           one JSON object per line`;

const USAGE_USAGE = `usage: nanoclaw usage [--since 7d] [--group FOLDER] [--json]

Model tokens per day and group.

  --since T        an ISO time or a duration (30m, 24h, 7d)
  --group FOLDER   only this group
  --json           one JSON object per line`;

export const COMMANDS: readonly Command[] = [
  {
    name: 'start',
    summary: 'run the assistant with its WhatsApp channel',
    usage: `usage: nanoclaw start

Runs the assistant in the foreground. On a terminal, a first start links
WhatsApp and registers your self-chat as the main group.`,
    async run(args, io) {
      parseCommandArgs('start', { args, options: {} });
      const config = loadCliConfig(io.env);
      const logger = makeLogger(config.logLevel);
      const [{ runHost }, { whatsappChannels }] = await Promise.all([load.runHost(), load.whatsapp()]);
      return runHost({
        config,
        logger,
        env: io.env,
        errors: process.stderr,
        // Linking and registering main happen under the host lock, like everything else.
        setup: () => firstRunSetup(config, io.print),
        makeChannels: (events) => whatsappChannels(config, logger, events, io.print),
      });
    },
  },
  {
    name: 'chat',
    summary: 'talk to the main group from this terminal (JSON lines with --json)',
    usage: `usage: nanoclaw chat [--json]

Runs the assistant with this terminal as the main group's chat.

  --json   read and write one JSON object per line, e.g. {"text":"hi"}`,
    async run(args, io) {
      const { values } = parseCommandArgs('chat', {
        args,
        options: { json: { type: 'boolean', default: false } },
      });
      const config = loadCliConfig(io.env);
      // The terminal is the conversation: only warnings unless LOG_LEVEL asks for more.
      const logger = makeLogger(io.env.LOG_LEVEL ? config.logLevel : 'warn');
      const { chatOptions, runHost } = await load.runHost();
      return runHost(
        chatOptions(
          { config, logger, env: io.env, errors: process.stderr },
          { input: process.stdin, output: process.stdout, json: values.json },
        ),
      );
    },
  },
  {
    name: 'doctor',
    summary: 'check node, database, sandbox, credential, WhatsApp link',
    usage: `usage: nanoclaw doctor

Checks what the assistant needs and says how to fix what is missing.`,
    async run(args, io) {
      parseCommandArgs('doctor', { args, options: {} });
      const { doctorCommand } = await load.doctor();
      return doctorCommand(loadCliConfig(io.env), io.print);
    },
  },
  {
    name: 'auth',
    summary: 'link a WhatsApp account (QR code, or a pairing code with --phone)',
    usage: `usage: nanoclaw auth whatsapp [--phone NUMBER]

  --phone NUMBER   link with a pairing code instead of a QR code, e.g. --phone 491701234567`,
    async run(args, io) {
      const { values, positionals } = parseCommandArgs('auth', {
        args,
        allowPositionals: true,
        options: { phone: { type: 'string' } },
      });
      if (positionals.length !== 1 || positionals[0] !== 'whatsapp') {
        throw usageError('auth', 'the only account to link is whatsapp, e.g. nanoclaw auth whatsapp');
      }
      const { whatsappAuthCommand } = await load.whatsapp();
      return whatsappAuthCommand(loadCliConfig(io.env), io.print, values.phone);
    },
  },
  {
    name: 'groups',
    summary: 'list, add, add-main, remove, budget or edit registered groups',
    usage: `usage: nanoclaw groups list|add|add-main|remove|budget|edit

${Object.values(GROUPS_SUBCOMMAND_USAGE).join('\n\n')}`,
    subcommandUsage: GROUPS_SUBCOMMAND_USAGE,
    async run(args, io) {
      const config = loadCliConfig(io.env);
      const { addGroup, groupsCommand } = await load.admin();
      if (args[0] === 'add-main') {
        parseCommandArgs('groups add-main', { args: args.slice(1), options: {} });
        const { linkedAccountOrThrow } = await load.whatsapp();
        const account = linkedAccountOrThrow(config);
        await withStore(config, (store) => addGroup(config, store, mainGroupFor(config, account.jid)));
        io.print(`registered your self-chat ${account.jid} as the main group`);
        return 0;
      }
      await withStore(config, (store) => groupsCommand(args, config, store, io.print));
      return 0;
    },
  },
  {
    name: 'tasks',
    summary: 'list, add, pause, resume or cancel scheduled tasks',
    usage: TASKS_USAGE,
    subcommandUsage: TASKS_SUBCOMMAND_USAGE,
    async run(args, io) {
      const config = loadCliConfig(io.env);
      const { tasksCommand } = await load.tasks();
      return withStore(config, (store) => tasksCommand(args, config, store, io.print));
    },
  },
  {
    name: 'audit',
    summary: 'security decisions: refusals, egress, tool calls',
    usage: AUDIT_USAGE,
    async run(args, io) {
      const config = loadCliConfig(io.env);
      const { auditCommand } = await load.admin();
      await withStore(config, (store) => auditCommand(args, store, io.print));
      return 0;
    },
  },
  {
    name: 'usage',
    summary: 'model tokens per day and group',
    usage: USAGE_USAGE,
    async run(args, io) {
      const config = loadCliConfig(io.env);
      const { usageCommand } = await load.admin();
      await withStore(config, (store) => usageCommand(args, store, io.print));
      return 0;
    },
  },
  {
    name: 'backup',
    summary: 'write a consistent backup (database, groups, sessions, policy, WhatsApp keys) to one archive',
    usage: BACKUP_USAGE,
    async run(args, io) {
      const { backupCommand } = await load.backup();
      return backupCommand(args, loadCliConfig(io.env), io.print, () => new Date());
    },
  },
  {
    name: 'restore',
    summary: 'restore a backup archive into this data directory (no host may run)',
    usage: RESTORE_USAGE,
    async run(args, io) {
      const { restoreCommand } = await load.backup();
      return restoreCommand(args, loadCliConfig(io.env), io.print, () => new Date());
    },
  },
  {
    name: 'runs',
    summary: 'the record of agent runs, newest first',
    usage: RUNS_USAGE,
    async run(args, io) {
      const { parseRunsArgs, runsCommand } = await load.runs();
      const options = parseRunsArgs(args);
      if (options === null) {
        io.print(RUNS_USAGE);
        return 0;
      }
      const config = loadCliConfig(io.env);
      await withStore(config, (store) => runsCommand(options, store, io.print));
      return 0;
    },
  },
];
