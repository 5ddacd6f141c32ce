// Turns one run's stream of failed model requests into a single "the model is in
// trouble" signal (issue 10). The agent retries a retryable failure by itself,
// so one failure says little: only when no model answer has come for
// `graceMs` after it is the trouble reported, once, with the latest cause. A
// model answer clears it; trouble after that is a new outage.

import type { RunModelError } from './types.js';

export interface ModelTroubleWatchOptions {
  /** How long a retryable failure must go unanswered before it is reported; 0 reports at once. */
  graceMs: number;
  onTrouble(error: RunModelError): void;
  /** The clock; the process's own timers unless a test steps one by hand. */
  setTimer?: (callback: () => void, delayMs: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface ModelTroubleWatch {
  /** A failed model request; only retryable ones count (the others end the run or are the agent's). */
  failed(error: RunModelError): void;
  /** The model answered a request: whatever was wrong is over. */
  answered(): void;
  /** The run is over: nothing is reported any more. */
  stop(): void;
}

export function watchModelTrouble(options: ModelTroubleWatchOptions): ModelTroubleWatch {
  const setTimer =
    options.setTimer ??
    ((callback: () => void, delayMs: number): unknown => setTimeout(callback, delayMs).unref());
  const clearTimer =
    options.clearTimer ?? ((handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  let latest: RunModelError | undefined;
  let timer: unknown;
  let reported = false;
  let stopped = false;

  const clear = (): void => {
    if (timer !== undefined) clearTimer(timer);
    timer = undefined;
  };
  const report = (): void => {
    timer = undefined;
    if (stopped || reported || latest === undefined) return;
    reported = true;
    options.onTrouble(latest);
  };

  return {
    failed(error) {
      if (stopped || !error.retryable) return;
      latest = error;
      if (reported || timer !== undefined) return;
      if (options.graceMs <= 0) report();
      else timer = setTimer(report, options.graceMs);
    },
    answered() {
      clear();
      latest = undefined;
      reported = false;
    },
    stop() {
      stopped = true;
      clear();
    },
  };
}
