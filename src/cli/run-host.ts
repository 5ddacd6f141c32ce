// `nanoclaw start` and `nanoclaw chat`: build the real host (sandboxed runs,
// broker, channels) and run it until a signal — or, for `chat`, until the input
// ends and everything pending is answered and delivered.

import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { loadEgressAllowlist } from '../broker/egress-allowlist.js';
import { LOCAL_MAIN_JID, LocalChannel } from '../channels/local/local-channel.js';
import type { Channel, ChannelEvents } from '../core/channel.js';
import type { Logger } from '../core/logger.js';
import { loadCredential, type Config } from '../config/config.js';
import { createHost, type Host } from '../host.js';
import { ProcessRuns } from '../runs/process-runs.js';
import { formatMode, type AccessRepair } from '../sandbox/access.js';
import { loadMountAllowlist } from '../sandbox/mount-policy.js';
import { sandboxWarning, selectBackend, type SelectOptions } from '../sandbox/select.js';
import type { StoreApi } from '../store/api.js';
import { asStoreError } from '../store/errors.js';
import { addGroup } from './admin.js';
import { CliError } from './context.js';
import { acquireHostLock } from './lock.js';
import { findPackageRoot, runnerPaths } from './package-root.js';

export interface RunHostOptions {
  config: Config;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  errors: Writable;
  /** Builds the channels of this command. */
  makeChannels: (events: ChannelEvents, host: { isRegistered: (jid: string) => boolean }) => Channel[];
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
  if (config.engine === 'claude-code' && !credential) {
    logger.error('no model credential (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN): runs will be refused');
  }

  let storeRef: StoreApi | null = null;
  const host = createHost({
    config,
    logger,
    makeChannels: (events) =>
      options.makeChannels(events, { isRegistered: (jid) => storeRef?.getGroupByJid(jid) !== undefined }),
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
        ...runnerPaths(findPackageRoot(import.meta.url)),
        loadMountAllowlist: () => loadMountAllowlist(config.configDir),
        loadEgressAllowlist: () => loadEgressAllowlist(config.configDir),
        userHome: os.homedir(),
        now: Date.now,
      }),
    readEgressAllowlist: () => loadEgressAllowlist(config.configDir),
  });
  storeRef = host.store;
  options.prepare?.(host.store);

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopping ??= host.stop());
  const onSignal = (): void => {
    logger.info('shutting down');
    void stop().then(() => process.exit(0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    try {
      await host.start();
    } catch (err) {
      throw asStoreError(err, config.paths.dbPath);
    }
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

/** `nanoclaw chat [--json]`: the owner's main group over the terminal. */
export function chatOptions(
  base: Pick<RunHostOptions, 'config' | 'logger' | 'env' | 'errors'>,
  io: { input: Readable; output: Writable; json: boolean },
): RunHostOptions {
  let inputEnded: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (inputEnded = resolve));
  return {
    ...base,
    prepare: (store) => {
      if (store.getGroupByJid(LOCAL_MAIN_JID)) return;
      const main = store.listGroups().find((g) => g.isMain);
      if (main) {
        throw new CliError(
          `the main group is ${main.jid}; talk to it there, or remove it first (nanoclaw groups remove ${main.jid})`,
        );
      }
      addGroup(base.config, store, {
        jid: LOCAL_MAIN_JID,
        name: 'Local terminal',
        folder: 'main',
        trigger: `@${base.config.assistantName}`,
        requiresTrigger: false,
        isMain: true,
      });
    },
    makeChannels: (events, host) => [
      new LocalChannel({
        input: io.input,
        output: io.output,
        errors: base.errors,
        json: io.json,
        assistantName: base.config.assistantName,
        events,
        isRegistered: host.isRegistered,
        now: Date.now,
        onInputEnd: () => inputEnded(),
      }),
    ],
    untilDone: async (host) => {
      await ended;
      // Input is over: answer what is pending, deliver it, then exit.
      host.router.finishAfterCurrentTurns();
      await host.settled();
      return 0;
    },
  };
}
