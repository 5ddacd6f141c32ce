// `nanoclaw start` and `nanoclaw chat`: build the real host (sandboxed runs,
// broker, channels) and run it until a signal — or, for `chat`, until the input
// ends and everything pending is answered and delivered. Every host serves the
// control socket: other `nanoclaw` commands run inside it, and `chat` attaches
// to it as a console of the main group instead of starting a second host.

import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { loadEgressAllowlist } from '../broker/egress-allowlist.js';
import { LOCAL_MAIN_JID, LocalChannel, type ConsoleIo } from '../channels/local/local-channel.js';
import type { ChatAttached, ConsoleEvent } from '../core/control.js';
import type { Channel, ChannelEvents } from '../core/channel.js';
import type { Logger } from '../core/logger.js';
import { loadCredential, loadOpenAiKey, loadTranscriberKey, type Config } from '../config/config.js';
import { engineUsesModel } from '../core/protocol.js';
import { transcriberFromConfig } from '../runs/transcribe.js';
import { createHost, type Host } from '../host.js';
import { ProcessRuns } from '../runs/process-runs.js';
import { formatMode, type AccessRepair } from '../sandbox/access.js';
import { loadMountAllowlist } from '../sandbox/mount-policy.js';
import { sandboxWarning, selectBackend, type SelectOptions } from '../sandbox/select.js';
import type { StoreApi } from '../store/api.js';
import { asStoreError } from '../store/errors.js';
import { addGroup } from './admin.js';
import type { HostAccess } from './commands/index.js';
import { loadCliConfig, makeFileLogger, makeLogger } from './context.js';
import { logFile as logFileOf } from './commands/logs.js';
import { attachToHost, onHostOrLocally } from './control-client.js';
import {
  clearStaleSocket,
  controlSocketPath,
  startControlServer,
  type AttachedChat,
  type ControlHandlers,
  type ControlServer,
} from './control-server.js';
import { acquireHostLock } from './lock.js';
import { findPackageRoot, runnerPaths } from './package-root.js';

/** Runs one CLI command inside this host (the control socket's `command`). */
export type HostCommandRunner = (
  argv: string[],
  io: {
    print: (line: string) => void;
    errors: (line: string) => void;
    env: NodeJS.ProcessEnv;
    host: HostAccess;
  },
) => Promise<number>;

export interface RunHostOptions {
  config: Config;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  errors: Writable;
  /** Builds the channels of this command besides the consoles' local channel. */
  makeChannels: (events: ChannelEvents, host: { isRegistered: (jid: string) => boolean }) => Channel[];
  runCommand: HostCommandRunner;
  /** This process's own terminal as a console (`chat`): it then carries main's answers itself. */
  console?: ConsoleIo;
  /** Called after start; resolves with the exit code when the command is over (`chat`). */
  untilDone?: (host: Host) => Promise<number>;
  /** Extra set-up on the store before the host starts (e.g. registering local:main). */
  prepare?: (store: StoreApi) => void;
  /** One-time set-up that writes to the data dir (linking WhatsApp): runs once the lock is ours. */
  setup?: () => Promise<void>;
}

/**
 * The directories NanoClaw may chmod so the sandbox user can pass: its home and
 * everything under it — unless that home is the owner's own home directory or a
 * top-level one (/root, /tmp…), whose mode is the owner's choice; then only the
 * data and groups directories NanoClaw created inside it.
 */
export function ownedDataRoots(config: Config, userHome: string): string[] {
  const home = path.resolve(config.homeDir);
  const personal =
    home === path.resolve(userHome) ||
    path.resolve(userHome).startsWith(`${home}/`) ||
    path.dirname(home) === '/';
  return personal ? [config.paths.dataDir, config.paths.groupsDir] : [home];
}

/** The one description of which sandbox to pick, shared by `start`, `chat` and `doctor`. */
export function backendSelection(config: Config, onRepair?: (repair: AccessRepair) => void): SelectOptions {
  const install = runnerPaths(findPackageRoot(import.meta.url));
  return {
    requested: config.sandbox,
    platform: process.platform,
    allowUnsandboxedMain: config.allowUnsandboxedMain,
    allowUnenforcedEgress: config.allowUnenforcedEgress,
    dockerBinary: config.dockerBinary,
    bwrap: {
      runsDir: config.paths.runsDir,
      etcDir: path.join(config.paths.dataDir, 'sandbox-etc'),
      accessTargets: [
        { path: config.paths.groupsDir, need: 'read', what: 'the groups directory' },
        { path: config.paths.sessionsDir, need: 'traverse', what: 'the sessions directory' },
        { path: install.runnerEntry, need: 'read', what: 'the runner bundle (npm run build)' },
        { path: install.runnerNodeModules, need: 'read', what: "the install's node_modules (Claude Code)" },
      ],
      ownedRoots: ownedDataRoots(config, os.homedir()),
      onRepair,
    },
    noneHomesDir: path.join(config.paths.dataDir, 'homes'),
  };
}

/** The log line of a repaired directory mode. */
export function repairNote(repair: AccessRepair): string {
  return `made ${repair.path} passable for the sandbox user: mode ${formatMode(repair.fromMode)} -> ${formatMode(repair.toMode)}`;
}

export async function runHost(options: RunHostOptions): Promise<number> {
  const { config } = options;
  // First of all: while another host lives on this data dir, touch nothing of it
  // (its store, its sandboxes). Held until this process ends.
  const lock = await acquireHostLock({
    dataDir: config.paths.dataDir,
    pid: process.pid,
    now: () => new Date(),
    what: 'or talk to it through its channels',
  });
  // A signal ends the host with process.exit, past any finally.
  process.once('exit', lock.release);
  try {
    await options.setup?.();
    return await runLockedHost(options);
  } finally {
    process.off('exit', lock.release);
    lock.release();
  }
}

async function runLockedHost(options: RunHostOptions): Promise<number> {
  const { config, logger, env } = options;
  const onRepair = (repair: AccessRepair): void => logger.warn({ dir: repair.path }, repairNote(repair));
  const select = (): ReturnType<typeof selectBackend> =>
    selectBackend(backendSelection(config, onRepair)).then(async (selection) => {
      const { backend } = selection;
      if (backend?.name === 'none') options.errors.write(`${sandboxWarning(backend)}\n`);
      if (!backend) logger.error({ reason: selection.reason }, 'no sandbox available: runs will be refused');
      // Before any run of ours: remove sandboxes a previous host left behind. Safe only
      // because we hold the data dir's lock: no other host of this runs dir is alive.
      const cleaned = (await backend?.cleanupOrphans()) ?? 0;
      if (cleaned > 0) logger.warn({ cleaned }, 'removed sandboxes left by a previous run');
      return selection;
    });
  // Probing the sandbox starts a trial one (~200 ms): do it beside start-up, not before it.
  const sandbox = select();
  const credential = loadCredential({ env, homeDir: config.homeDir });
  if (engineUsesModel(config.engine) && !credential) {
    logger.error('no model credential (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN): runs will be refused');
  }

  let storeRef: StoreApi | null = null;
  let consoles: LocalChannel | null = null;
  const host = createHost({
    config,
    logger,
    makeChannels: (events) => {
      const isRegistered = (jid: string): boolean => storeRef?.getGroupByJid(jid) !== undefined;
      consoles = new LocalChannel({
        assistantName: config.assistantName,
        events,
        isRegistered,
        now: Date.now,
        mainJid: () => storeRef?.listGroups().find((g) => g.isMain)?.jid ?? null,
        ownsMainChat: options.console !== undefined,
        console: options.console,
      });
      // Channels are asked in order who owns a chat: the transports first, the consoles last.
      return [...options.makeChannels(events, { isRegistered }), consoles];
    },
    makeRuns: ({ store, tools }) =>
      new ProcessRuns({
        config,
        logger,
        store,
        tools,
        sandbox,
        reselectSandbox: async () => {
          const selection = await select();
          if (selection.backend) logger.info({ sandbox: selection.backend.name }, 'sandbox usable now');
          return selection;
        },
        credential: credential ? { kind: credential.kind, value: credential.value } : null,
        openaiApiKey: loadOpenAiKey({ env, homeDir: config.homeDir }),
        ...runnerPaths(findPackageRoot(import.meta.url)),
        loadMountAllowlist: () => loadMountAllowlist(config.configDir),
        loadEgressAllowlist: () => loadEgressAllowlist(config.configDir),
        userHome: os.homedir(),
        now: Date.now,
      }),
    readEgressAllowlist: () => loadEgressAllowlist(config.configDir),
    transcriber: transcriberFromConfig(config, loadTranscriberKey({ env, homeDir: config.homeDir })),
  });
  storeRef = host.store;
  options.prepare?.(host.store);

  let control: ControlServer | null = null;
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await control?.close();
      await host.stop();
    })());
  const onSignal = (): void => {
    logger.info('shutting down');
    void stop().then(() => process.exit(0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    clearStaleSocket(controlSocketPath(config.paths.dataDir));
    try {
      await host.start();
    } catch (err) {
      throw asStoreError(err, config.paths.dbPath);
    }
    if (!consoles) throw new Error('the host did not build its consoles');
    control = await startControlServer({
      dataDir: config.paths.dataDir,
      logger,
      handlers: controlHandlers(host, consoles, options),
    });
    logger.info({ engine: config.engine }, 'host ready');
    void sandbox.then(({ backend, reason }) =>
      logger.info({ sandbox: backend?.name ?? null, reason }, 'sandbox selected'),
    );
    if (!options.untilDone) return await new Promise<number>(() => undefined);
    const code = await options.untilDone(host);
    await stop();
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** How often an attached console checks, after its input ended, whether main has answered it. */
const CONSOLE_SETTLE_CHECK_MS = 200;

/**
 * Resolves once everything sent to `jid` so far is answered and delivered — or
 * nothing more will happen for it (no run, no retry waiting), e.g. runs refused.
 */
async function chatSettled(host: Host, jid: string): Promise<void> {
  const target = host.store.latestSeq(jid);
  for (;;) {
    const undelivered = host.store.pendingOutbound(Number.MAX_SAFE_INTEGER).some((i) => i.chatJid === jid);
    const answered = host.store.getCursor(jid) >= target;
    if (!undelivered && (answered || !host.queue.hasWork(jid))) return;
    await new Promise((resolve) => setTimeout(resolve, CONSOLE_SETTLE_CHECK_MS));
  }
}

function eventStream(event: 'out' | 'err', write: (event: ConsoleEvent) => void): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      write({ event, data: String(chunk) });
      callback();
    },
  });
}

function controlHandlers(host: Host, consoles: LocalChannel, options: RunHostOptions): ControlHandlers {
  const access: HostAccess = {
    config: options.config,
    store: host.store,
    // A task paused, resumed or added from the CLI re-arms the timer now, not at the next due time.
    changed: () => host.scheduler.reschedule(),
  };
  return {
    async command(argv) {
      const lines: Array<{ stream: 'out' | 'err'; text: string }> = [];
      const exitCode = await options.runCommand(argv, {
        print: (text) => lines.push({ stream: 'out', text }),
        errors: (text) => lines.push({ stream: 'err', text }),
        env: options.env,
        host: access,
      });
      return { exitCode, lines };
    },
    attachChat(json, write, cwd): AttachedChat | { code: 'E_NO_MAIN_GROUP'; message: string } {
      const main = host.store.listGroups().find((g) => g.isMain);
      if (!main) return { code: 'E_NO_MAIN_GROUP', message: NO_MAIN_GROUP };
      const input = new PassThrough();
      let inputEnded: () => void = () => undefined;
      const ended = new Promise<void>((resolve) => (inputEnded = resolve));
      const detach = consoles.attach({
        input,
        output: eventStream('out', write),
        errors: eventStream('err', write),
        json,
        onInputEnd: () => inputEnded(),
        ...(cwd === undefined ? {} : { cwd }),
      });
      const attached: ChatAttached = {
        mainJid: main.jid,
        mainName: main.name,
        assistantName: options.config.assistantName,
      };
      return {
        attached,
        line: (text) => input.write(`${text}\n`),
        end: () => input.end(),
        done: ended
          .then(() => chatSettled(host, main.jid))
          .then(() => {
            detach();
            return 0;
          }),
        detach,
      };
    },
  };
}

const NO_MAIN_GROUP =
  'no main group is registered yet; link WhatsApp with nanoclaw start, or stop the host and run nanoclaw chat';

/** `nanoclaw chat [--json]`: the owner's console into the main group. */
export async function chatCommand(options: {
  env: NodeJS.ProcessEnv;
  json: boolean;
  runCommand: HostCommandRunner;
  input?: Readable;
  output?: Writable & { isTTY?: boolean };
  errors?: Writable;
}): Promise<number> {
  const config = loadCliConfig(options.env);
  const input = options.input ?? process.stdin;
  const errors = options.errors ?? process.stderr;
  const rawOutput = options.output ?? process.stdout;
  const output = options.json ? rawOutput : terminalOutput(rawOutput);
  const greet = (assistantName: string, mainName: string, where: string): void => {
    if (options.json) return;
    output.write(
      `Talking to ${assistantName} in ${mainName} (${where}). Type /exit or press Ctrl-D to quit.\n`,
    );
  };
  const attach = (socket: Socket): Promise<number> =>
    attachToHost(socket, {
      input,
      output,
      errors,
      json: options.json,
      onAttached: (info) => greet(info.assistantName, info.mainName, 'through the running host'),
    });

  // With no host, this process is the host and the terminal its console. A
  // conversation on screen gets no log lines: they go to a file; JSON mode keeps
  // warnings on stderr, where scripts look for them.
  const ownHost = (): Promise<number> => {
    const logFile = logFileOf(config);
    const logger = options.json
      ? makeLogger(options.env.LOG_LEVEL ? config.logLevel : 'warn')
      : makeFileLogger(config.logLevel, logFile);
    let inputEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => (inputEnded = resolve));
    return runHost({
      config,
      logger,
      env: options.env,
      errors,
      runCommand: options.runCommand,
      makeChannels: () => [],
      console: { input, output, errors, json: options.json, onInputEnd: () => inputEnded() },
      prepare: (store) => {
        let main = store.listGroups().find((g) => g.isMain);
        if (!main) {
          main = addGroup(config, store, {
            jid: LOCAL_MAIN_JID,
            name: 'Local terminal',
            folder: 'main',
            trigger: `@${config.assistantName}`,
            requiresTrigger: false,
            isMain: true,
          });
        }
        greet(config.assistantName, main.name, `logs in ${logFile}`);
      },
      untilDone: async (host) => {
        await ended;
        // Input is over: answer what is pending, deliver it, then exit.
        host.router.finishAfterCurrentTurns();
        await host.settled();
        return 0;
      },
    });
  };
  return onHostOrLocally(config.paths.dataDir, attach, ownHost);
}

/** On a terminal, a "> " prompt after each thing printed; elsewhere the text alone. */
function terminalOutput(output: Writable & { isTTY?: boolean }): Writable {
  if (!output.isTTY) return output;
  output.write('> ');
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      output.write(`\r${String(chunk)}> `, callback);
    },
  });
}
