// A clock the test steps by hand, for code that takes setTimer/clearTimer. Unlike
// vi.useFakeTimers it leaves the process's own timers alone, so real child
// processes and I/O keep working while only the code under test waits on it.

export class ManualTimers {
  private nowMs = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { atMs: number; callback: () => void }>();

  readonly setTimer = (callback: () => void, delayMs: number): unknown => {
    const id = this.nextId++;
    this.pending.set(id, { atMs: this.nowMs + delayMs, callback });
    return id;
  };

  readonly clearTimer = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };

  get now(): number {
    return this.nowMs;
  }

  /** Timers still waiting. */
  get size(): number {
    return this.pending.size;
  }

  /** Moves the clock forward, firing every timer that falls due, in due order. */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      let next: [number, { atMs: number; callback: () => void }] | undefined;
      for (const entry of this.pending) {
        if (entry[1].atMs <= target && (next === undefined || entry[1].atMs < next[1].atMs)) next = entry;
      }
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.nowMs = next[1].atMs;
      next[1].callback();
    }
    this.nowMs = target;
  }
}
