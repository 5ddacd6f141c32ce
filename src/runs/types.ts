// What the rest of the host sees of an agent run. The real implementation spawns
// a sandboxed runner (process-runs.ts); tests substitute an in-process double.

import type { ContextMode, Group } from '../core/types.js';

export interface RunRequest {
  group: Group;
  prompt: string;
  sessionId?: string;
  /** Present for scheduled task runs; such a run is closed after its first answer. */
  task?: { id: string; contextMode: ContextMode };
}

export interface RunCallbacks {
  /** One result text of the agent, raw (the host applies SPEC §3 rules). */
  onOutput(text: string): Promise<void> | void;
  /** The agent finished a turn (with or without text) and waits for input. */
  onTurnEnd?(): void;
  /** The agent's session id, as soon as it is known. */
  onSessionId?(sessionId: string): void;
  /**
   * The run's model requests have been failing with a retryable cause (unreachable,
   * overloaded, rate-limited, 5xx, no answer) for longer than the grace, while the
   * agent keeps retrying. Once per outage within the run; a model answer ends it.
   */
  onModelTrouble?(error: RunModelError): void;
}

/**
 * Why the host stopped a run itself. Retrying does not help a run stopped by a
 * limit (`wall_time`, `disk_quota`, `output_limit`); the router may use this
 * to report at once instead of retrying.
 */
export type RunStopReason =
  'run_timeout' | 'wall_time' | 'output_limit' | 'disk_quota' | 'killed' | 'spawn_failed' | 'model_error';

/** A failed model request the broker saw and classified (src/broker/model-errors.ts). */
export interface RunModelError {
  class: string;
  /** False for a refused key, billing, an invalid request or an unknown model: retrying cannot help. */
  retryable: boolean;
  /** One sentence for the chat naming the configured upstream and what to do. */
  message: string;
}

export interface RunOutcome {
  ok: boolean;
  error?: string;
  /** Set when the host stopped the run (a limit, a kill) or could not spawn it. */
  stoppedBy?: RunStopReason;
  sessionId?: string;
  /** True when the run never started (sandbox missing, mount refused, credential missing, budget). */
  refusedToStart?: boolean;
  /** The model error that ended the run (non-retryable ones stop it at once), when the broker saw one. */
  modelError?: RunModelError;
}

export interface LiveRun {
  readonly runId: string;
  /** Passes a follow-up prompt to the live run; false when it no longer takes input. */
  send(text: string): boolean;
  /** Asks the run to finish after its current turn. */
  close(): void;
  /** Ends the run now. */
  kill(reason: string): void;
  readonly done: Promise<RunOutcome>;
}

export interface AgentRuns {
  start(request: RunRequest, callbacks: RunCallbacks): LiveRun;
}
