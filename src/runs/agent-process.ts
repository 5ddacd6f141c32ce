// The host side of one runner process: spawns it (already wrapped by a sandbox
// backend), speaks the JSON-lines protocol, answers tool calls, and enforces
// the limits of SPEC §5.4 and §12 — idle close, run-timeout kill, an absolute
// wall-clock limit, dropped bad lines, and a hard cap on total output. Anything
// in the sandbox can write protocol lines (the agent can open the runner's
// stdout through /proc), so with `outputIsActivity` off only activity the host
// verified itself (`noteActivity`, e.g. model responses the broker served)
// resets the idle and run timers; nothing resets the wall limit. A failed spawn
// (EMFILE, ENFILE, EAGAIN…) fails the run, never the host. It knows nothing of
// groups or authorization; the caller's onToolCall decides.

import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import {
  LineSplitter,
  MAX_LINE_BYTES,
  encodeLine,
  parseRunnerLine,
  type HostToRunnerLine,
  type RunnerToHostLine,
  type StartLine,
} from '../core/protocol.js';
import type { SpawnSpec } from '../sandbox/types.js';
import type { RunStopReason } from './types.js';

export interface ToolCallRequest {
  id: string;
  name: string;
  args: unknown;
}

export interface ToolCallAnswer {
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type ProtocolErrorReason = 'malformed_line' | 'unknown_message_type' | 'output_limit';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type SetTimer = (callback: () => void, delayMs: number) => unknown;
export type ClearTimer = (handle: unknown) => void;

export interface AgentProcessOptions {
  spawn: SpawnSpec;
  start: StartLine;
  /** No output for this long → ask the runner to finish (`close`). */
  idleTimeoutMs: number;
  /** No output for this long → kill. */
  runTimeoutMs: number;
  /** Absolute limit from spawn to kill; nothing resets it (SPEC §5.4). */
  maxWallMs: number;
  /**
   * Whether `output` lines reset the idle and run timers. True only when nothing
   * better is known (the echo engine); a model run passes false and reports the
   * broker's verified model traffic through `noteActivity` instead.
   */
  outputIsActivity?: boolean;
  /** Total stdout bytes allowed for the whole run; past it the run is killed. */
  maxOutputBytes: number;
  /** SIGTERM → SIGKILL grace when killing. */
  killGraceMs?: number;
  onToolCall(call: ToolCallRequest): Promise<ToolCallAnswer>;
  onOutput(text: string | null, sessionId?: string): Promise<void> | void;
  onProtocolError(reason: ProtocolErrorReason, detail: string): void;
  onLog(level: LogLevel, msg: string): void;
  onReady?(): void;
  /** Injected so tests can step the clock; default the global timers. */
  setTimer?: SetTimer;
  clearTimer?: ClearTimer;
}

export interface AgentProcessResult {
  ok: boolean;
  error?: string;
  sessionId?: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Number of `output` lines received. */
  outputCount: number;
  /** Set when the host stopped the run (a limit, a kill) or could not start it. */
  stoppedBy?: RunStopReason;
}

export interface AgentProcess {
  readonly runId: string;
  /** Undefined when the process could not be spawned. */
  readonly pid: number | undefined;
  /** Passes a follow-up prompt; false when the run no longer takes input. */
  send(text: string): boolean;
  /** Asks the runner to finish after its current turn. */
  close(): void;
  /** SIGTERM to the process group, SIGKILL after the grace period. */
  kill(reason: string, stoppedBy?: RunStopReason): void;
  /** Activity the host verified itself (a model response for this run); resets the idle and run timers. */
  noteActivity(): void;
  readonly done: Promise<AgentProcessResult>;
}

const DEFAULT_KILL_GRACE_MS = 3000;
const STDERR_TAIL_BYTES = 4096;
/** After exit, how long to wait for stdout to drain before giving up on it. */
const DRAIN_AFTER_EXIT_MS = 2000;

/** A child whose stdio pipes exist; spawn leaves them unset when it failed early (EMFILE, ENFILE). */
type PipedChild = ChildProcess & { stdin: Writable; stdout: Readable; stderr: Readable };

function hasPipes(child: ChildProcess): child is PipedChild {
  // Node 20 leaves them undefined despite the null in its types.
  return Boolean(child.stdin && child.stdout && child.stderr);
}

/** What the owner should read for the resource errors a loaded host really sees. */
const RESOURCE_HINTS: Readonly<Record<string, string>> = {
  EMFILE: 'the host process has too many open files',
  ENFILE: 'the system has too many open files',
  EAGAIN: 'the system cannot start another process right now',
  ENOMEM: 'the system is out of memory',
};

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  const message = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  const hint = code === undefined ? undefined : RESOURCE_HINTS[code];
  return hint ? `${message} (${hint})` : message;
}

export function startAgentProcess(options: AgentProcessOptions): AgentProcess {
  const { spawn: spec, start } = options;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const setTimer: SetTimer = options.setTimer ?? ((callback, delayMs) => setTimeout(callback, delayMs));
  const clearTimer: ClearTimer =
    options.clearTimer ?? ((handle) => clearTimeout(handle as NodeJS.Timeout | undefined));
  const outputIsActivity = options.outputIsActivity ?? true;

  let child: ChildProcess;
  try {
    child = spawn(spec.command, spec.args, {
      env: spec.env,
      cwd: spec.cwd,
      uid: spec.uid,
      gid: spec.gid,
      // Own process group, so a kill reaches everything the runner started.
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    // Synchronous failures (bad uid, bad cwd type) end the run before it starts.
    return failedToSpawn(start.runId, Promise.resolve(describeError(err)));
  }
  if (!hasPipes(child)) {
    // EMFILE/ENFILE: Node gives up before creating the pipes and reports the
    // error on the next tick; without this listener it would crash the host.
    const spawnFailure = new Promise<string>((resolve) =>
      child.once('error', (err) => resolve(describeError(err))),
    );
    return failedToSpawn(start.runId, spawnFailure);
  }
  const proc: PipedChild = child;

  let stdinOpen = true;
  let closeSent = false;
  let killed: { reason: string; stoppedBy: RunStopReason } | undefined;
  let exited = false;
  let outputBytes = 0;
  let overLimit = false;
  let outputCount = 0;
  let sessionId: string | undefined = start.sessionId;
  let doneLine: { error?: string } | undefined;
  let stderrTail = '';
  let spawnError: string | undefined;
  let idleTimer: unknown;
  let runTimer: unknown;
  let wallTimer: unknown;
  let graceTimer: unknown;
  // Outputs are delivered one after another, in the order the runner wrote them.
  let outputChain: Promise<void> = Promise.resolve();

  const write = (line: HostToRunnerLine): boolean => {
    if (!stdinOpen || proc.stdin.destroyed) return false;
    proc.stdin.write(encodeLine(line));
    return true;
  };

  // Every stream gets an error listener before anything is written or read: an
  // unhandled stream error would take the whole host down.
  proc.stdin.on('error', () => {
    // EPIPE: the runner is gone; its exit is handled below.
    stdinOpen = false;
  });
  proc.stdout.on('error', (err) => options.onLog('warn', `runner stdout: ${describeError(err)}`));
  proc.stderr.on('error', () => undefined);

  const killGroup = (signal: NodeJS.Signals): void => {
    if (proc.pid === undefined) return;
    try {
      process.kill(-proc.pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  };

  const clearTimers = (): void => {
    if (idleTimer !== undefined) clearTimer(idleTimer);
    if (runTimer !== undefined) clearTimer(runTimer);
    idleTimer = undefined;
    runTimer = undefined;
  };

  const kill = (reason: string, stoppedBy: RunStopReason = 'killed'): void => {
    if (exited) return;
    killed ??= { reason, stoppedBy };
    stdinOpen = false;
    clearTimers();
    if (wallTimer !== undefined) clearTimer(wallTimer);
    wallTimer = undefined;
    killGroup('SIGTERM');
    graceTimer ??= setTimer(() => killGroup('SIGKILL'), killGraceMs);
  };

  const close = (): void => {
    if (closeSent || exited) return;
    closeSent = true;
    write({ type: 'close' });
  };

  const armTimers = (): void => {
    clearTimers();
    if (exited || killed !== undefined) return;
    idleTimer = setTimer(() => {
      options.onLog('info', `run ${start.runId}: no activity for ${options.idleTimeoutMs} ms, closing`);
      close();
    }, options.idleTimeoutMs);
    runTimer = setTimer(
      () => kill(`run timeout: no activity for ${options.runTimeoutMs} ms`, 'run_timeout'),
      options.runTimeoutMs,
    );
  };

  const answerToolCall = async (call: ToolCallRequest): Promise<void> => {
    let answer: ToolCallAnswer;
    try {
      answer = await options.onToolCall(call);
    } catch (err) {
      answer = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    write(
      answer.ok
        ? { type: 'tool_result', id: call.id, ok: true, result: answer.result }
        : { type: 'tool_result', id: call.id, ok: false, error: answer.error ?? 'tool call failed' },
    );
  };

  const handleLine = (line: RunnerToHostLine): void => {
    switch (line.type) {
      case 'ready':
        options.onReady?.();
        return;
      case 'log':
        options.onLog(line.level, line.msg);
        return;
      case 'tool_call':
        void answerToolCall({ id: line.id, name: line.name, args: line.args });
        return;
      case 'output': {
        outputCount++;
        if (line.sessionId) sessionId = line.sessionId;
        if (outputIsActivity) armTimers();
        const { text } = line;
        const lineSessionId = line.sessionId;
        outputChain = outputChain.then(async () => {
          try {
            await options.onOutput(text, lineSessionId);
          } catch (err) {
            options.onLog('error', `onOutput failed: ${err instanceof Error ? err.message : String(err)}`);
          }
        });
        return;
      }
      case 'done':
        if (line.sessionId) sessionId = line.sessionId;
        doneLine = { error: line.error };
        return;
    }
  };

  const splitter = new LineSplitter(
    MAX_LINE_BYTES,
    (raw) => {
      const parsed = parseRunnerLine(raw);
      if (parsed.ok) handleLine(parsed.line);
      else options.onProtocolError(parsed.reason, parsed.detail);
    },
    () => options.onProtocolError('malformed_line', `line longer than ${MAX_LINE_BYTES} bytes`),
  );

  proc.stdout.on('data', (chunk: Buffer) => {
    if (overLimit) return;
    outputBytes += chunk.length;
    if (outputBytes > options.maxOutputBytes) {
      overLimit = true;
      options.onProtocolError('output_limit', `more than ${options.maxOutputBytes} bytes of output`);
      kill(`output limit exceeded (${options.maxOutputBytes} bytes)`, 'output_limit');
      return;
    }
    splitter.push(chunk);
  });

  proc.stderr.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
  });

  const done = new Promise<AgentProcessResult>((resolve) => {
    let settled = false;
    let exitCode: number | null = null;
    let signal: NodeJS.Signals | null = null;
    let drainTimer: unknown;

    const finish = (): void => {
      if (settled) return;
      settled = true;
      exited = true;
      stdinOpen = false;
      clearTimers();
      for (const timer of [wallTimer, graceTimer, drainTimer]) if (timer !== undefined) clearTimer(timer);
      if (!overLimit) splitter.end();
      // Anything the runner left behind in its group goes with it.
      killGroup('SIGKILL');
      void outputChain.then(() => resolve(buildResult(exitCode, signal)));
    };

    const buildResult = (code: number | null, sig: NodeJS.Signals | null): AgentProcessResult => {
      const base = { sessionId, exitCode: code, signal: sig, outputCount };
      if (spawnError !== undefined)
        return {
          ...base,
          ok: false,
          error: `could not start the runner: ${spawnError}`,
          stoppedBy: 'spawn_failed',
        };
      if (killed !== undefined)
        return { ...base, ok: false, error: `killed: ${killed.reason}`, stoppedBy: killed.stoppedBy };
      if (doneLine?.error) return { ...base, ok: false, error: doneLine.error };
      if (doneLine || (code === 0 && closeSent)) return { ...base, ok: true };
      const how = sig ? `signal ${sig}` : `code ${code}`;
      const tail = stderrTail.trim().split('\n').slice(-5).join('\n');
      return {
        ...base,
        ok: false,
        error: `runner exited with ${how} without finishing${tail ? `: ${tail}` : ''}`,
      };
    };

    proc.on('error', (err) => {
      // Spawn failures (ENOENT, EACCES, EAGAIN) never produce an exit event.
      if (proc.pid === undefined) {
        spawnError = describeError(err);
        finish();
      } else {
        options.onLog('warn', `runner process: ${describeError(err)}`);
      }
    });
    proc.on('exit', (code, sig) => {
      exitCode = code;
      signal = sig;
      exited = true;
      clearTimers();
      // A grandchild holding stdout open must not keep the run alive forever.
      drainTimer = setTimer(() => {
        proc.stdout.destroy();
        proc.stderr.destroy();
        finish();
      }, DRAIN_AFTER_EXIT_MS);
    });
    proc.on('close', (code, sig) => {
      exitCode ??= code;
      signal ??= sig;
      finish();
    });
  });

  write({ ...start });
  armTimers();
  wallTimer = setTimer(
    () => kill(`run exceeded its wall-clock limit of ${options.maxWallMs} ms`, 'wall_time'),
    options.maxWallMs,
  );

  return {
    runId: start.runId,
    pid: proc.pid,
    send: (text) => {
      if (closeSent || killed !== undefined || exited) return false;
      return write({ type: 'message', text });
    },
    close,
    kill,
    noteActivity: () => {
      if (!exited && killed === undefined) armTimers();
    },
    done,
  };
}

function failedToSpawn(runId: string, error: Promise<string>): AgentProcess {
  return {
    runId,
    pid: undefined,
    send: () => false,
    close: () => undefined,
    kill: () => undefined,
    noteActivity: () => undefined,
    done: error.then((message) => ({
      ok: false,
      error: `could not start the runner: ${message}`,
      exitCode: null,
      signal: null,
      outputCount: 0,
      stoppedBy: 'spawn_failed',
    })),
  };
}
