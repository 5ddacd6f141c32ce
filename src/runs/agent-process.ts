// The host side of one runner process: spawns it (already wrapped by a sandbox
// backend), speaks the JSON-lines protocol, answers tool calls, and enforces
// the limits of SPEC §5.4 and §12 — idle close, run-timeout kill, dropped bad
// lines, and a hard cap on total output. It knows nothing of groups or
// authorization; the caller's onToolCall decides.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
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

export interface AgentProcessOptions {
  spawn: SpawnSpec;
  start: StartLine;
  /** No output for this long → ask the runner to finish (`close`). */
  idleTimeoutMs: number;
  /** No output for this long → kill. */
  runTimeoutMs: number;
  /** Total stdout bytes allowed for the whole run; past it the run is killed. */
  maxOutputBytes: number;
  /** SIGTERM → SIGKILL grace when killing. */
  killGraceMs?: number;
  onToolCall(call: ToolCallRequest): Promise<ToolCallAnswer>;
  onOutput(text: string | null, sessionId?: string): Promise<void> | void;
  onProtocolError(reason: ProtocolErrorReason, detail: string): void;
  onLog(level: LogLevel, msg: string): void;
  onReady?(): void;
}

export interface AgentProcessResult {
  ok: boolean;
  error?: string;
  sessionId?: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Number of `output` lines received. */
  outputCount: number;
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
  kill(reason: string): void;
  readonly done: Promise<AgentProcessResult>;
}

const DEFAULT_KILL_GRACE_MS = 3000;
const STDERR_TAIL_BYTES = 4096;
/** After exit, how long to wait for stdout to drain before giving up on it. */
const DRAIN_AFTER_EXIT_MS = 2000;

export function startAgentProcess(options: AgentProcessOptions): AgentProcess {
  const { spawn: spec, start } = options;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;

  let child: ChildProcessWithoutNullStreams;
  let spawnError: Error | undefined;
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
    spawnError = err instanceof Error ? err : new Error(String(err));
    return failedToSpawn(start.runId, spawnError);
  }

  let stdinOpen = true;
  let closeSent = false;
  let killed: string | undefined;
  let exited = false;
  let outputBytes = 0;
  let overLimit = false;
  let outputCount = 0;
  let sessionId: string | undefined = start.sessionId;
  let doneLine: { error?: string } | undefined;
  let stderrTail = '';
  let idleTimer: NodeJS.Timeout | undefined;
  let runTimer: NodeJS.Timeout | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  // Outputs are delivered one after another, in the order the runner wrote them.
  let outputChain: Promise<void> = Promise.resolve();

  const write = (line: HostToRunnerLine): boolean => {
    if (!stdinOpen || child.stdin.destroyed) return false;
    child.stdin.write(encodeLine(line));
    return true;
  };

  child.stdin.on('error', () => {
    // EPIPE: the runner is gone; its exit is handled below.
    stdinOpen = false;
  });

  const killGroup = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  };

  const kill = (reason: string): void => {
    if (exited) return;
    if (killed === undefined) killed = reason;
    stdinOpen = false;
    clearTimers();
    killGroup('SIGTERM');
    graceTimer ??= setTimeout(() => killGroup('SIGKILL'), killGraceMs);
  };

  const close = (): void => {
    if (closeSent || exited) return;
    closeSent = true;
    write({ type: 'close' });
  };

  const clearTimers = (): void => {
    if (idleTimer) clearTimeout(idleTimer);
    if (runTimer) clearTimeout(runTimer);
    idleTimer = undefined;
    runTimer = undefined;
  };

  const armTimers = (): void => {
    clearTimers();
    if (exited || killed !== undefined) return;
    idleTimer = setTimeout(() => {
      options.onLog('info', `run ${start.runId}: no output for ${options.idleTimeoutMs} ms, closing`);
      close();
    }, options.idleTimeoutMs);
    runTimer = setTimeout(
      () => kill(`run timeout: no output for ${options.runTimeoutMs} ms`),
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
        armTimers();
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

  child.stdout.on('data', (chunk: Buffer) => {
    if (overLimit) return;
    outputBytes += chunk.length;
    if (outputBytes > options.maxOutputBytes) {
      overLimit = true;
      options.onProtocolError('output_limit', `more than ${options.maxOutputBytes} bytes of output`);
      kill(`output limit exceeded (${options.maxOutputBytes} bytes)`);
      return;
    }
    splitter.push(chunk);
  });

  child.stderr.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
  });

  const done = new Promise<AgentProcessResult>((resolve) => {
    let settled = false;
    let exitCode: number | null = null;
    let signal: NodeJS.Signals | null = null;
    let drainTimer: NodeJS.Timeout | undefined;

    const finish = (): void => {
      if (settled) return;
      settled = true;
      exited = true;
      stdinOpen = false;
      clearTimers();
      if (graceTimer) clearTimeout(graceTimer);
      if (drainTimer) clearTimeout(drainTimer);
      if (!overLimit) splitter.end();
      // Anything the runner left behind in its group goes with it.
      killGroup('SIGKILL');
      void outputChain.then(() => resolve(buildResult(exitCode, signal)));
    };

    const buildResult = (code: number | null, sig: NodeJS.Signals | null): AgentProcessResult => {
      const base = { sessionId, exitCode: code, signal: sig, outputCount };
      if (spawnError)
        return { ...base, ok: false, error: `could not start the runner: ${spawnError.message}` };
      if (killed !== undefined) return { ...base, ok: false, error: `killed: ${killed}` };
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

    child.on('error', (err) => {
      // Spawn failures (ENOENT, EACCES) never produce an exit event.
      if (child.pid === undefined) {
        spawnError = err;
        finish();
      }
    });
    child.on('exit', (code, sig) => {
      exitCode = code;
      signal = sig;
      exited = true;
      clearTimers();
      // A grandchild holding stdout open must not keep the run alive forever.
      drainTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, DRAIN_AFTER_EXIT_MS);
    });
    child.on('close', (code, sig) => {
      exitCode ??= code;
      signal ??= sig;
      finish();
    });
  });

  write({ ...start });
  armTimers();

  return {
    runId: start.runId,
    pid: child.pid,
    send: (text) => {
      if (closeSent || killed !== undefined || exited) return false;
      return write({ type: 'message', text });
    },
    close,
    kill,
    done,
  };
}

function failedToSpawn(runId: string, err: Error): AgentProcess {
  return {
    runId,
    pid: undefined,
    send: () => false,
    close: () => undefined,
    kill: () => undefined,
    done: Promise.resolve({
      ok: false,
      error: `could not start the runner: ${err.message}`,
      exitCode: null,
      signal: null,
      outputCount: 0,
    }),
  };
}
