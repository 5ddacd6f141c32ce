// The real AgentRuns: one sandboxed runner process per run. Before anything is
// spawned the run must pass every gate — token budget, a usable sandbox, a
// credential, the mount policy — and each refusal is audited and reported to
// the chat (never a silent fallback). A run gets its own socket directory with
// the model proxy (and the egress proxy only when its group has an allowlist);
// the runner sees the sockets, never the credential. While it runs, the group's
// disk use is measured at a coarse interval (never per write) against its quota,
// and only model responses the broker served count as activity for the idle and
// run timers: protocol lines can be forged from inside the sandbox.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditReason, AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import { engineUsesModel, type StartLine } from '../core/protocol.js';
import type { Config } from '../config/config.js';
import { rulesForGroup, type EgressAllowlistFile } from '../broker/egress-allowlist.js';
import { startEgressProxy } from '../broker/egress-proxy.js';
import { stopsRunAtOnce } from '../broker/model-errors.js';
import { startModelProxy, type ModelCredential } from '../broker/model-proxy.js';
import { SandboxAccessError } from '../sandbox/access.js';
import { bwrapErrorLine, diagnoseBwrapFailure, readUsernsSysctls } from '../sandbox/start-failure.js';
import { checkAdditionalMounts, type MountAllowlist } from '../sandbox/mount-policy.js';
import { buildMountTable } from '../sandbox/mounts.js';
import type { SandboxBackend } from '../sandbox/types.js';
import type { RunOutcomeKind, StoreApi } from '../store/api.js';
import { startAgentProcess, type AgentProcess, type AgentProcessResult } from './agent-process.js';
import { formatMiB, measureDiskUsage } from './disk-usage.js';
import { ensureStarterMemory } from './group-memory.js';
import { watchModelTrouble } from './model-trouble.js';
import type { ToolHost } from './tools.js';
import type {
  AgentRuns,
  LiveRun,
  RunCallbacks,
  RunModelError,
  RunOutcome,
  RunRequest,
  RunStopReason,
} from './types.js';

/** The run record's outcome: a kill without a limit behind it is the host's shutdown. */
export function outcomeKind(outcome: RunOutcome): RunOutcomeKind {
  if (outcome.refusedToStart) return 'refused';
  if (outcome.ok) return 'ok';
  return outcome.stoppedBy === 'killed' ? 'interrupted' : 'error';
}

/** How often a live run's disk use is measured; coarse on purpose (each check walks the tree). */
const DEFAULT_DISK_CHECK_INTERVAL_MS = 10_000;
/** More entries than this under a group counts as over quota (inodes, not only bytes). */
const MAX_QUOTA_ENTRIES = 200_000;

export interface ProcessRunsOptions {
  config: Config;
  logger: Logger;
  store: StoreApi;
  tools: ToolHost;
  /**
   * The sandbox chosen at start-up, settled in the background so the host is
   * ready before the probe finishes; `backend` null means none is usable and
   * `reason` says why. The first run waits for it.
   */
  sandbox: Promise<{ backend: SandboxBackend | null; reason: string }>;
  /**
   * Probes again when no sandbox was usable, at the next run start: the owner's
   * fix (a chmod, a sysctl) then takes effect without a restart.
   */
  reselectSandbox?: () => Promise<{ backend: SandboxBackend | null; reason: string }>;
  credential: ModelCredential | null;
  /** The OpenAI-compatible provider's key; empty or absent for a keyless local server. */
  openaiApiKey?: string;
  runnerEntry: string;
  runnerNodeModules: string;
  /** Read at every run start so policy edits apply without a restart; may throw on a corrupt file. */
  loadMountAllowlist: () => MountAllowlist | null;
  loadEgressAllowlist: () => EgressAllowlistFile;
  userHome: string;
  now: () => number;
  /** Disk quota check period of a live run; default 10 s. */
  diskCheckIntervalMs?: number;
}

class StartRefused extends Error {
  constructor(
    readonly reason: AuditReason | null,
    message: string,
  ) {
    super(message);
  }
}

/** The LiveRun handed out at once; the process behind it appears a moment later. */
class ProcessRun implements LiveRun {
  readonly done: Promise<RunOutcome>;
  private process: AgentProcess | null = null;
  private readonly pending: string[] = [];
  private closeRequested = false;
  private killedReason: { reason: string; stoppedBy: RunStopReason } | null = null;
  private finished = false;

  constructor(
    readonly runId: string,
    launch: (run: ProcessRun) => Promise<RunOutcome>,
  ) {
    this.done = launch(this).finally(() => {
      this.finished = true;
    });
  }

  attach(process: AgentProcess): void {
    this.process = process;
    for (const text of this.pending.splice(0)) process.send(text);
    if (this.killedReason !== null) process.kill(this.killedReason.reason, this.killedReason.stoppedBy);
    else if (this.closeRequested) process.close();
  }

  get killed(): { reason: string; stoppedBy: RunStopReason } | null {
    return this.killedReason;
  }

  send(text: string): boolean {
    if (this.finished || this.closeRequested || this.killedReason !== null) return false;
    if (this.process) return this.process.send(text);
    this.pending.push(text);
    return true;
  }

  close(): void {
    this.closeRequested = true;
    this.process?.close();
  }

  kill(reason: string, stoppedBy: RunStopReason = 'killed'): void {
    this.killedReason ??= { reason, stoppedBy };
    this.process?.kill(reason, stoppedBy);
  }
}

export class ProcessRuns implements AgentRuns {
  private readonly options: ProcessRunsOptions;
  /** The current selection; replaced by a new probe while none is usable. */
  private sandbox: Promise<{ backend: SandboxBackend | null; reason: string }>;
  /** One probe at a time, shared by the runs that start meanwhile. */
  private reselecting: Promise<{ backend: SandboxBackend | null; reason: string }> | null = null;
  /** Every refusal of a run's gates, broker or mounts: one SQLite record and one log line (SPEC §10.8). */
  private readonly audit: AuditSink;

  constructor(options: ProcessRunsOptions) {
    this.options = options;
    this.sandbox = options.sandbox;
    this.audit = {
      audit: (record) => {
        options.store.audit(record);
        options.logger.warn({ audit: record }, 'refused');
      },
    };
    // One host per data directory (SPEC §5.6), built before its first run: a run
    // still open in the record was cut off when the previous host stopped.
    this.recordSafely(null, 'close the records of interrupted runs', () => {
      const interrupted = options.store.interruptOpenRuns(options.now());
      if (interrupted > 0)
        options.logger.warn({ runs: interrupted }, 'runs of the previous host were interrupted');
    });
  }

  start(request: RunRequest, callbacks: RunCallbacks): LiveRun {
    const startedAtMs = this.options.now();
    const runId = `${request.group.folder}-${startedAtMs.toString(36)}-${randomBytes(3).toString('hex')}`;
    this.recordSafely(runId, 'record the run start', () =>
      this.options.store.runStarted({
        runId,
        groupFolder: request.group.folder,
        taskId: request.task?.id ?? null,
        startedAtMs,
      }),
    );
    return new ProcessRun(runId, async (run) => {
      let outcome: RunOutcome;
      try {
        outcome = await this.launch(run, request, callbacks);
      } catch (err) {
        this.recordEnd(runId, { ok: false, error: err instanceof Error ? err.message : String(err) });
        throw err;
      }
      this.recordEnd(runId, outcome);
      return outcome;
    });
  }

  private recordEnd(runId: string, outcome: RunOutcome): void {
    this.recordSafely(runId, 'record the run end', () =>
      this.options.store.runEnded({
        runId,
        endedAtMs: this.options.now(),
        outcome: outcomeKind(outcome),
        error: outcome.ok ? null : (outcome.error ?? null),
      }),
    );
  }

  /** The run record is for the owner's eyes: a storage error writing it is logged, never the run's failure. */
  private recordSafely(runId: string | null, what: string, write: () => void): void {
    try {
      write();
    } catch (err) {
      this.options.logger.warn({ runId, err }, `could not ${what}`);
    }
  }

  private async launch(run: ProcessRun, request: RunRequest, callbacks: RunCallbacks): Promise<RunOutcome> {
    const { config, logger, store } = this.options;
    const { group } = request;
    let backend: SandboxBackend;
    let extraMounts;
    try {
      const sandbox = await this.currentSandbox();
      ({ backend, extraMounts } = this.checkGates(run.runId, request, sandbox));
      const overQuota = await this.overDiskQuota(group.folder);
      if (overQuota) throw new StartRefused('disk_quota_exceeded', `${overQuota}; the owner must free space`);
    } catch (err) {
      if (!(err instanceof StartRefused)) throw err;
      if (err.reason) this.auditStartRefusal(group.folder, run.runId, err.reason);
      logger.error({ group: group.folder, runId: run.runId, error: err.message }, 'run refused to start');
      return { ok: false, refusedToStart: true, error: err.message };
    }

    try {
      ensureStarterMemory(path.join(config.paths.groupsDir, group.folder), group, config.assistantName);
    } catch (err) {
      // Memory is a convenience: a full disk or odd permissions must not keep the chat unanswered.
      logger.warn({ err, group: group.folder }, 'could not write the starter CLAUDE.md');
    }
    const runDir = path.join(config.paths.runsDir, run.runId);
    fs.mkdirSync(runDir, { recursive: true, mode: 0o755 });
    // The sandbox user enters it to reach the sockets; a umask of 077 would have left it 0700.
    fs.chmodSync(runDir, 0o755);
    const closers: Array<() => Promise<void>> = [];
    // Set once the process exists; the model proxy reports activity to it.
    let agent: AgentProcess | undefined;
    // The broker's view of why the model failed; a setup refusal (key, billing, model) stops the run at once.
    let modelError: RunModelError | undefined;
    // Failures the agent retries by itself: the chat hears of them while the run goes on.
    const trouble = watchModelTrouble({
      graceMs: config.modelTroubleNoticeMs,
      onTrouble: (error) => {
        logger.warn(
          { group: group.folder, runId: run.runId, class: error.class, graceMs: config.modelTroubleNoticeMs },
          'model trouble outlasts the grace; the agent keeps retrying',
        );
        callbacks.onModelTrouble?.(error);
      },
    });
    try {
      const placeholderKey = `sk-ant-run-${randomBytes(24).toString('hex')}`;
      const engine = group.containerConfig.engine ?? config.engine;
      const usesModel = engineUsesModel(engine);
      // checkStart refused an openai group without lite or without a configured provider.
      const openai = group.containerConfig.provider === 'openai' ? config.openaiProvider : null;
      const credential: ModelCredential | null = openai
        ? { kind: 'api_key', value: this.options.openaiApiKey ?? '' }
        : this.options.credential;
      const modelName = openai ? openai.model : config.model;
      if (usesModel && credential) {
        const proxy = await startModelProxy({
          socketPath: path.join(runDir, 'model.sock'),
          placeholderKey,
          ...(openai ? { api: 'openai' as const } : {}),
          run: { runId: run.runId, groupFolder: group.folder, taskId: request.task?.id ?? null },
          upstreamBaseUrl: openai ? openai.baseUrl : config.upstreamBaseUrl,
          credential,
          audit: this.audit,
          onUsage: (usage) => {
            store.recordUsage({
              groupFolder: group.folder,
              runId: run.runId,
              taskId: request.task?.id ?? null,
              usage,
              atMs: this.options.now(),
            });
            // A model response the broker itself served: the only activity the sandbox cannot forge.
            agent?.noteActivity();
            // The model answered again: an earlier failure the run got past is no longer the story.
            if (run.killed?.stoppedBy !== 'model_error') modelError = undefined;
            trouble.answered();
          },
          modelName,
          onModelError: (error) => {
            // The first failure retrying cannot fix is the cause; a transient one only until then.
            if (modelError === undefined || modelError.retryable) modelError = error;
            if (stopsRunAtOnce(error)) run.kill(error.message, 'model_error');
            else trouble.failed(error);
          },
          responseTimeoutMs: config.modelResponseTimeoutMs,
          logger,
          budget:
            group.dailyTokenBudget === null
              ? null
              : {
                  dailyTokens: group.dailyTokenBudget,
                  tokensUsedToday: () => store.tokensUsedOnDay(group.folder, this.options.now()),
                },
          maxConnections: config.maxBrokerConnectionsPerRun,
        });
        closers.push(() => proxy.close());
      }
      const egressRules = rulesForGroup(this.options.loadEgressAllowlist(), group.folder);
      if (egressRules.length > 0) {
        const egress = await startEgressProxy({
          socketPath: path.join(runDir, 'egress.sock'),
          allowlist: egressRules,
          run: { runId: run.runId, groupFolder: group.folder },
          audit: this.audit,
          maxConnections: config.maxBrokerConnectionsPerRun,
          logger,
        });
        closers.push(() => egress.close());
      }

      const mounts = buildMountTable({
        group,
        groupsDir: config.paths.groupsDir,
        sessionsDir: config.paths.sessionsDir,
        extraMounts,
      });
      const spawn = backend.buildSpawn({
        runId: run.runId,
        group,
        mounts,
        socketDir: runDir,
        runnerEntry: this.options.runnerEntry,
        runnerNodeModules: this.options.runnerNodeModules,
        env: { TZ: config.timeZone, LANG: 'C.UTF-8' },
        limits: config.sandboxLimits,
      });
      const start: StartLine = {
        type: 'start',
        runId: run.runId,
        prompt: request.prompt,
        sessionId: request.sessionId,
        group: { folder: group.folder, isMain: group.isMain, name: group.name },
        assistantName: config.assistantName,
        scheduledTask: request.task,
        engine,
        modelName: modelName ?? undefined,
        ...(engine === 'lite'
          ? { compaction: { windowTokens: config.contextWindowTokens, atFraction: config.compactAtFraction } }
          : {}),
        paths: {
          groupDir: spawn.paths.groupDir,
          globalDir: spawn.paths.globalDir,
          homeDir: spawn.paths.homeDir,
        },
        model: usesModel
          ? {
              socketPath: path.posix.join(spawn.paths.socketDir, 'model.sock'),
              placeholderKey,
              ...(openai ? { api: 'openai' as const } : {}),
            }
          : undefined,
        egress:
          egressRules.length > 0
            ? { socketPath: path.posix.join(spawn.paths.socketDir, 'egress.sock') }
            : undefined,
      };

      let sessionId: string | undefined;
      let sandboxEmptied: (() => Promise<boolean>) | undefined;
      agent = startAgentProcess({
        spawn,
        start,
        // The runner's first line proves its sandbox is whole: the moment to note what to wait for.
        onReady: () => {
          if (agent?.pid !== undefined) sandboxEmptied = backend.watchRunExit?.(agent.pid);
        },
        idleTimeoutMs: config.idleTimeoutMs,
        runTimeoutMs: group.containerConfig.runTimeoutMs ?? config.runTimeoutMs,
        maxWallMs: config.runMaxWallMs,
        // With a model, output lines prove nothing (forgeable); broker traffic does.
        outputIsActivity: !usesModel,
        maxOutputBytes: config.maxOutputBytes,
        onToolCall: (call) =>
          this.options.tools.handle(
            {
              runId: run.runId,
              group,
              mountPolicy: { loadAllowlist: this.options.loadMountAllowlist, homeDir: this.options.userHome },
            },
            call.name,
            call.args,
          ),
        onOutput: async (text, newSessionId) => {
          if (newSessionId && newSessionId !== sessionId) {
            sessionId = newSessionId;
            callbacks.onSessionId?.(newSessionId);
          }
          if (text !== null) await callbacks.onOutput(text);
          callbacks.onTurnEnd?.();
          // A task run answers once (SPEC §6.7); it takes no follow-ups.
          if (request.task) run.close();
        },
        onProtocolError: (reason, detail) => {
          this.audit.audit({
            group: group.folder,
            runId: run.runId,
            action: 'protocol',
            target: null,
            reason,
          });
          logger.warn({ group: group.folder, runId: run.runId, reason, detail }, 'runner protocol error');
        },
        onLog: (level, msg) => logger[level]({ group: group.folder, runId: run.runId }, `runner: ${msg}`),
      });
      run.attach(agent);
      const stopWatching = this.watchDiskQuota(run, group.folder);
      const result = await agent.done;
      stopWatching();
      // Nothing the agent started may outlive its run (a fork bomb's last processes included).
      if (sandboxEmptied && !(await sandboxEmptied())) {
        logger.warn(
          { group: group.folder, runId: run.runId },
          'the sandbox still had processes after its run',
        );
      }
      const stoppedBy = run.killed?.stoppedBy ?? result.stoppedBy;
      const sandboxFailure = this.sandboxStartFailure(result, stoppedBy);
      if (sandboxFailure) {
        if (sandboxFailure.refused) this.auditStartRefusal(group.folder, run.runId, 'sandbox_unavailable');
        return { ok: false, error: sandboxFailure.message, refusedToStart: sandboxFailure.refused };
      }
      if (stoppedBy === 'wall_time') {
        this.audit.audit({
          group: group.folder,
          runId: run.runId,
          action: 'run_limit',
          target: group.folder,
          reason: 'wall_time_exceeded',
        });
      }
      // A limit or a kill says why on its own; otherwise the model's failure is the cause, in the
      // owner's words. A run that timed out while its last model request failed waited on the model.
      const byModel =
        !result.ok &&
        modelError !== undefined &&
        (stoppedBy === undefined || stoppedBy === 'model_error' || stoppedBy === 'run_timeout');
      return {
        ok: result.ok,
        error: result.ok
          ? undefined
          : byModel
            ? modelError?.message
            : (run.killed?.reason ?? result.error ?? `runner exited with code ${result.exitCode}`),
        ...(result.ok || stoppedBy === undefined ? {} : { stoppedBy }),
        ...(byModel ? { modelError } : {}),
        sessionId: result.sessionId ?? sessionId,
      };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof SandboxAccessError) {
        // Retrying cannot help until the owner changes a directory's mode: refuse, with the fix.
        this.auditStartRefusal(group.folder, run.runId, 'sandbox_unavailable');
        logger.error({ group: group.folder, runId: run.runId, error: message }, 'run refused to start');
        return { ok: false, refusedToStart: true, error: `the sandbox cannot start: ${message}` };
      }
      logger.error({ group: group.folder, runId: run.runId, error: message }, 'run failed to start');
      return { ok: false, error: message };
    } finally {
      trouble.stop();
      for (const close of closers) await close().catch(() => undefined);
      backend.releaseRun?.(run.runId);
      try {
        fs.rmSync(runDir, { recursive: true, force: true });
      } catch (err) {
        // Out of fds or a busy disk must not turn a finished run into a host error.
        logger.warn({ runId: run.runId, err }, 'could not remove the run directory');
      }
    }
  }

  /**
   * bwrap exited before the runner said anything: its cause, in the owner's terms.
   * A blocked path or switched-off user namespaces will not heal by retrying, so
   * those refuse the run; anything else stays an ordinary (retried) failure.
   */
  private sandboxStartFailure(
    result: AgentProcessResult,
    stoppedBy: RunStopReason | undefined,
  ): { message: string; refused: boolean } | null {
    if (result.ok || result.outputCount > 0 || stoppedBy !== undefined) return null;
    const line = bwrapErrorLine(result.error ?? '');
    if (!line) return null;
    const failure = diagnoseBwrapFailure({ stderr: line, sysctls: readUsernsSysctls() });
    return {
      message: `the sandbox cannot start: ${failure.message}`,
      refused: failure.cause === 'path_blocked' || failure.cause === 'userns_disabled',
    };
  }

  private async currentSandbox(): Promise<{ backend: SandboxBackend | null; reason: string }> {
    const settled = await this.sandbox;
    const reselect = this.options.reselectSandbox;
    if (settled.backend || !reselect) return settled;
    this.reselecting ??= reselect()
      .catch((err: unknown) => ({ backend: null, reason: err instanceof Error ? err.message : String(err) }))
      .then((next) => {
        this.sandbox = Promise.resolve(next);
        this.reselecting = null;
        return next;
      });
    return this.reselecting;
  }

  /** A sentence saying how the group is over its disk quota, or null when it is within it. */
  private async overDiskQuota(folder: string): Promise<string | null> {
    const { config } = this.options;
    const quotaBytes = config.groupDiskQuotaMb * 1024 * 1024;
    const usage = await measureDiskUsage(
      [path.join(config.paths.groupsDir, folder), path.join(config.paths.sessionsDir, folder)],
      { stopAboveBytes: quotaBytes, maxEntries: MAX_QUOTA_ENTRIES },
    );
    if (!usage.exceeded) return null;
    const what =
      usage.bytes > quotaBytes
        ? `more than ${formatMiB(quotaBytes)}`
        : `more than ${MAX_QUOTA_ENTRIES} files and directories`;
    return `disk quota exceeded: this chat's folder and session use ${what} (groupDiskQuotaMb ${config.groupDiskQuotaMb})`;
  }

  private auditStartRefusal(folder: string, runId: string, reason: AuditReason): void {
    this.audit.audit({ group: folder, runId, action: 'run_start', target: folder, reason });
  }

  /** Measures the group's disk use every few seconds (one walk at a time) and stops the run past its quota. */
  private watchDiskQuota(run: ProcessRun, folder: string): () => void {
    const intervalMs = this.options.diskCheckIntervalMs ?? DEFAULT_DISK_CHECK_INTERVAL_MS;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const check = async (): Promise<void> => {
      timer = undefined;
      const problem = await this.overDiskQuota(folder).catch(() => null);
      if (stopped) return;
      if (problem) {
        this.audit.audit({
          group: folder,
          runId: run.runId,
          action: 'run_limit',
          target: folder,
          reason: 'disk_quota_exceeded',
        });
        run.kill(problem, 'disk_quota');
        return;
      }
      timer = setTimeout(() => void check(), intervalMs);
    };
    timer = setTimeout(() => void check(), intervalMs);
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }

  /** Every reason a run must not start, checked before anything is created. */
  private checkGates(
    runId: string,
    request: RunRequest,
    sandbox: { backend: SandboxBackend | null; reason: string },
  ) {
    const { config, store } = this.options;
    const { backend } = sandbox;
    const { group } = request;
    if (group.dailyTokenBudget !== null) {
      const used = store.tokensUsedOnDay(group.folder, this.options.now());
      if (used >= group.dailyTokenBudget) {
        throw new StartRefused(
          'budget_exceeded',
          `the daily token budget of this chat (${group.dailyTokenBudget} tokens) is used up; it resets at midnight UTC`,
        );
      }
    }
    if (!backend) throw new StartRefused('sandbox_unavailable', `no sandbox is available: ${sandbox.reason}`);
    if (backend.name === 'none' && !(group.isMain && config.allowUnsandboxedMain)) {
      throw new StartRefused(
        'unsandboxed_refused',
        'running without a sandbox is allowed only for the main group, by explicit opt-in',
      );
    }
    const engine = group.containerConfig.engine ?? config.engine;
    if (group.containerConfig.provider === 'openai') {
      if (engine !== 'lite') {
        throw new StartRefused(
          null,
          `this chat uses the OpenAI-compatible provider, which only the lite engine speaks: nanoclaw groups edit ${group.jid} --engine lite`,
        );
      }
      if (!config.openaiProvider) {
        throw new StartRefused(
          null,
          'this chat uses the OpenAI-compatible provider, but none is configured: set "openaiProvider" in config.json, e.g. {"baseUrl": "http://127.0.0.1:11434", "model": "qwen2.5:7b"}',
        );
      }
    } else if (engineUsesModel(engine) && !this.options.credential) {
      throw new StartRefused(
        'credential_missing',
        'no model credential is configured (set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN for the host)',
      );
    }
    const requested = group.containerConfig.additionalMounts ?? [];
    let allowlist: MountAllowlist | null = null;
    if (requested.length > 0) {
      try {
        allowlist = this.options.loadMountAllowlist();
      } catch (err) {
        throw new StartRefused(null, err instanceof Error ? err.message : String(err));
      }
    }
    const checked = checkAdditionalMounts({
      group,
      requested,
      allowlist,
      homeDir: this.options.userHome,
      audit: this.audit,
      runId,
    });
    if (!checked.ok) throw new StartRefused(null, checked.message);
    return { backend, extraMounts: checked.mounts };
  }
}
