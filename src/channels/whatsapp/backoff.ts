// Reconnect delays: exponential so a flapping network is not hammered, capped
// so recovery after a long outage is quick, jittered so restarts spread out.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** Uniform in [0, 1), injected for tests. */
  random: () => number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /**
   * The delay before the next attempt: half the capped exponential step plus a
   * random share of the other half, so it always lies in [step/2, step] and
   * never exceeds `maxMs`.
   */
  nextDelayMs(): number {
    const { baseMs, maxMs, random } = this.options;
    const stepMs = Math.min(maxMs, baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    const half = stepMs / 2;
    return Math.round(half + random() * half);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
