// An in-process AgentRuns double for host tests and benchmarks: no process, no
// sandbox. A behaviour function decides what each run does; by default it
// answers "reply: <prompt>" and stays live for follow-ups until closed.

import type { AgentRuns, LiveRun, RunCallbacks, RunOutcome, RunRequest } from '../../src/runs/types.js';

export class FakeRun implements LiveRun {
  readonly runId: string;
  readonly followUps: string[] = [];
  closed = false;
  private settled = false;
  private resolveDone!: (outcome: RunOutcome) => void;
  readonly done: Promise<RunOutcome>;
  onFollowUp: (text: string) => void = () => {};

  constructor(
    runId: string,
    readonly request: RunRequest,
    readonly callbacks: RunCallbacks,
  ) {
    this.runId = runId;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  async output(text: string): Promise<void> {
    await this.callbacks.onOutput(text);
    this.callbacks.onTurnEnd?.();
  }

  finish(outcome: RunOutcome = { ok: true }): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveDone(outcome);
  }

  send(text: string): boolean {
    if (this.closed || this.settled) return false;
    this.followUps.push(text);
    this.onFollowUp(text);
    return true;
  }

  close(): void {
    this.closed = true;
    // Like a real runner: finishes after its current turn.
    queueMicrotask(() => this.finish({ ok: true }));
  }

  kill(reason: string): void {
    this.finish({ ok: false, error: `killed: ${reason}` });
  }
}

export type FakeBehaviour = (run: FakeRun) => void | Promise<void>;

/** Default: answer the prompt, stay live; task runs finish after answering. */
export const replyBehaviour: FakeBehaviour = async (run) => {
  await run.output(`reply: ${run.request.prompt}`);
  if (run.request.task) run.finish({ ok: true });
};

export class FakeRuns implements AgentRuns {
  readonly runs: FakeRun[] = [];
  private counter = 0;

  constructor(public behaviour: FakeBehaviour = replyBehaviour) {}

  start(request: RunRequest, callbacks: RunCallbacks): LiveRun {
    const run = new FakeRun(`fake-${++this.counter}`, request, callbacks);
    this.runs.push(run);
    void Promise.resolve()
      .then(() => this.behaviour(run))
      .catch((err: unknown) => run.finish({ ok: false, error: String(err) }));
    return run;
  }
}
