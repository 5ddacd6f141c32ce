// The table of `nanoclaw` subcommands: each has a name, a one-line summary for
// the top-level help, its own usage for `--help`, and a run function that
// returns an exit code. main.ts only dispatches over this table.

import type { Config } from '../../config/config.js';
import type { StoreApi } from '../../store/api.js';
import { GROUPS_ADD_USAGE, GROUPS_EDIT_USAGE, type Print } from '../admin.js';
import { BACKUP_USAGE, RESTORE_USAGE } from '../backup.js';
import { loadCliConfig, makeLogger } from '../context.js';
import type { HostCommandRunner } from '../run-host.js';
import { RUNS_USAGE } from '../runs.js';
import { parseCommandArgs, usageError } from './args.js';
import { CHATS_LIST_USAGE } from './chats.js';
import { LOGS_USAGE } from './logs.js';
import { SERVICE_SUBCOMMAND_USAGE, SERVICE_USAGE } from './service.js';
import { TASKS_SUBCOMMAND_USAGE, TASKS_USAGE } from './tasks.js';

// What a command does is loaded when it runs (the bundle splits each of these into a
// chunk of its own): `chat` never loads the WhatsApp channel or the doctor, and a
// one-shot command never loads the host. The table itself stays static.
const load = {
  admin: () => import('../admin.js'),
  auth: () => import('../../channels/whatsapp/auth.js'),
  backup: () => import('../backup.js'),
  chats: () => import('./chats.js'),
  doctor: () => import('../doctor.js'),
  lock: () => import('../lock.js'),
  logs: () => import('./logs.js'),
  runHost: () => import('../run-host.js'),
  runs: () => import('../runs.js'),
  service: () => import('./service.js'),
  store: () => import('../../store/store.js'),
  storeErrors: () => import('../../store/errors.js'),
  tasks: () => import('./tasks.js'),
  whatsapp: () => import('../whatsapp.js'),
};

/** The running host's live state, when a command runs inside it (over the control socket). */
export interface HostAccess {
  config: Config;
  store: StoreApi;
  /** Called after the command, so what it changed takes effect at once (the scheduler re-arms). */
  changed(): void;
}

export interface CommandIo {
  print: Print;
  env: NodeJS.ProcessEnv;
  host?: HostAccess;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** `--help` after one of these first arguments prints its own usage. */
  subcommandUsage?: Record<string, string>;
  /** While a host runs, this command runs inside it (its changes take effect at once). */
  viaHost?: boolean;
  run(args: string[], io: CommandIo): Promise<number>;
}

function configOf(io: CommandIo): Config {
  return io.host?.config ?? loadCliConfig(io.env);
}

/**
 * The store a command works on: the running host's own (the command runs inside
 * it), or — when no host runs — the data dir's, opened under the host lock so a
 * host cannot start half-way through the change.
 */
async function withStore<T>(io: CommandIo, fn: (store: StoreApi, config: Config) => T): Promise<T> {
  if (io.host) {
    try {
      return fn(io.host.store, io.host.config);
    } finally {
      io.host.changed();
    }
  }
  const config = loadCliConfig(io.env);
  return underHostLock(config, 'and try again', () => withLockedStore(config, (store) => fn(store, config)));
}

/** Runs `fn` holding the data dir's host lock (no host can start meanwhile); refuses while one runs. */
async function underHostLock<T>(config: Config, what: string, fn: () => Promise<T>): Promise<T> {
  const { acquireHostLock } = await load.lock();
  const lock = await acquireHostLock({
    dataDir: config.paths.dataDir,
    pid: process.pid,
    now: () => new Date(),
    what,
  });
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** Runs a command inside this host, for its control socket (loaded late: main.ts imports this table). */
export const runInThisHost: HostCommandRunner = async (argv, io) => {
  const { main } = await import('../main.js');
  return main(argv, io);
};

/** For set-up steps that already hold the host lock (inside `runHost`). */
async function withLockedStore<T>(config: Config, fn: (store: StoreApi) => T): Promise<T> {
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

/**
 * On a terminal, a first `start` links WhatsApp; then (every start) the linked
 * account's self-chat becomes main — taking over the terminal's main group if
 * `chat` came first — so one command takes a fresh install to a running
 * assistant. Without a terminal it only says what to run (no prompt loop in a service).
 */
export async function firstRunSetup(config: Config, print: Print): Promise<void> {
  const [{ readLinkedAccount }, { linkedAccountOrThrow, whatsappAuthCommand }, { adoptSelfChatAsMain }] =
    await Promise.all([load.auth(), load.whatsapp(), load.admin()]);
  if (!readLinkedAccount(config.paths.authDir)) {
    if (!process.stdin.isTTY) linkedAccountOrThrow(config);
    print('No WhatsApp account is linked yet; linking one now.');
    await whatsappAuthCommand(config, print);
  }
  const account = linkedAccountOrThrow(config);
  await withLockedStore(config, (store) => adoptSelfChatAsMain(config, store, account.jid, print));
}

const GROUPS_SUBCOMMAND_USAGE: Record<string, string> = {
  list: `usage: nanoclaw groups list [--group FOLDER] [--json]

  One line per registered group under a header: jid, folder, what wakes it,
  name, daily budget, allowed senders, run timeout and additional mounts.

  --group FOLDER   only the group with this folder
  --json           one JSON object per line`,
  add: GROUPS_ADD_USAGE,
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
        runCommand: runInThisHost,
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
      const { chatCommand } = await load.runHost();
      return chatCommand({ env: io.env, json: values.json, runCommand: runInThisHost });
    },
  },
  {
    name: 'doctor',
    summary: 'check node, database, sandbox, credential, WhatsApp link',
    usage: `usage: nanoclaw doctor

Checks what the assistant needs and says how to fix what is missing.`,
    viaHost: true,
    async run(args, io) {
      parseCommandArgs('doctor', { args, options: {} });
      const { doctorCommand } = await load.doctor();
      return doctorCommand(configOf(io), io.print, io.env);
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
      const config = loadCliConfig(io.env);
      const { whatsappAuthCommand } = await load.whatsapp();
      // A running host holds the linked session; a second link beside it would fight over the keys.
      return underHostLock(config, 'before linking WhatsApp again', () =>
        whatsappAuthCommand(config, io.print, values.phone),
      );
    },
  },
  {
    name: 'groups',
    summary: 'list, add, add-main, remove, budget or edit registered groups',
    usage: `usage: nanoclaw groups list|add|add-main|remove|budget|edit

${Object.values(GROUPS_SUBCOMMAND_USAGE).join('\n\n')}`,
    subcommandUsage: GROUPS_SUBCOMMAND_USAGE,
    viaHost: true,
    async run(args, io) {
      const { adoptSelfChatAsMain, groupsCommand } = await load.admin();
      if (args[0] === 'add-main') {
        parseCommandArgs('groups add-main', { args: args.slice(1), options: {} });
        const { linkedAccountOrThrow } = await load.whatsapp();
        const account = linkedAccountOrThrow(configOf(io));
        await withStore(io, (store, config) => adoptSelfChatAsMain(config, store, account.jid, io.print));
        return 0;
      }
      await withStore(io, (store, config) => groupsCommand(args, config, store, io.print));
      return 0;
    },
  },
  {
    name: 'tasks',
    summary: 'list, add, pause, resume or cancel scheduled tasks',
    usage: TASKS_USAGE,
    subcommandUsage: TASKS_SUBCOMMAND_USAGE,
    viaHost: true,
    async run(args, io) {
      const { tasksCommand } = await load.tasks();
      return withStore(io, (store, config) => tasksCommand(args, config, store, io.print));
    },
  },
  {
    name: 'chats',
    summary: 'chats seen on the channels, with the ids groups add needs',
    usage: CHATS_LIST_USAGE,
    subcommandUsage: { list: CHATS_LIST_USAGE },
    viaHost: true,
    async run(args, io) {
      const { chatsCommand } = await load.chats();
      return withStore(io, (store, config) => chatsCommand(args, config, store, io.print));
    },
  },
  {
    name: 'audit',
    summary: 'security decisions: refusals, egress, tool calls',
    usage: AUDIT_USAGE,
    viaHost: true,
    async run(args, io) {
      const { auditCommand } = await load.admin();
      await withStore(io, (store) => auditCommand(args, store, io.print));
      return 0;
    },
  },
  {
    name: 'usage',
    summary: 'model tokens per day and group',
    usage: USAGE_USAGE,
    viaHost: true,
    async run(args, io) {
      const { usageCommand } = await load.admin();
      await withStore(io, (store) => usageCommand(args, store, io.print));
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
    viaHost: true,
    async run(args, io) {
      const { parseRunsArgs, runsCommand } = await load.runs();
      const options = parseRunsArgs(args);
      if (options === null) {
        io.print(RUNS_USAGE);
        return 0;
      }
      await withStore(io, (store) => runsCommand(options, store, io.print));
      return 0;
    },
  },
  {
    name: 'service',
    summary: 'install, uninstall or show the systemd unit (launchd on macOS) that runs start',
    usage: SERVICE_USAGE,
    subcommandUsage: SERVICE_SUBCOMMAND_USAGE,
    async run(args, io) {
      const { realServiceHost, serviceCommand } = await load.service();
      return serviceCommand(args, realServiceHost(io.env, io.print), () => loadCliConfig(io.env));
    },
  },
  {
    name: 'logs',
    summary: "the host's log: the service's journal, or the log file",
    usage: LOGS_USAGE,
    async run(args, io) {
      const [{ logsCommand }, { realServiceHost }] = await Promise.all([load.logs(), load.service()]);
      return logsCommand(args, realServiceHost(io.env, io.print), () => loadCliConfig(io.env));
    },
  },
];
