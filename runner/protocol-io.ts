// The runner's side of the JSON-lines protocol. stdout belongs to the protocol
// alone, so every write goes through here; host lines are validated on receipt
// and fanned out to whichever engine is running.

import type { Readable, Writable } from 'node:stream';
import { LineSplitter, MAX_LINE_BYTES, encodeLine } from '../src/core/protocol-frame.js';
import type { HostToRunnerLine, RunnerToHostLine, StartLine } from '../src/core/protocol.js';
import { parseHostLine } from './host-lines.js';

export type ToolOutcome = { ok: true; result: unknown } | { ok: false; error: string };

/** What the agent reads back from a host tool: the error, or the result as JSON ('ok' for none). */
export function outcomeText(outcome: ToolOutcome): { text: string; isError: boolean } {
  if (!outcome.ok) return { text: outcome.error, isError: true };
  return { text: outcome.result === undefined ? 'ok' : JSON.stringify(outcome.result), isError: false };
}

export interface HostEvents {
  /** A follow-up prompt for the live run. */
  onMessage(text: string): void;
  /** The host asked the run to finish after the current turn (also on stdin end). */
  onClose(): void;
}

/**
 * One runner's connection to its host. Created once in main and passed to the
 * engine; holds the pending tool calls and the start line.
 */
export class HostConnection {
  private readonly pendingTools = new Map<string, (outcome: ToolOutcome) => void>();
  private nextToolId = 1;
  private startResolve: ((start: StartLine) => void) | undefined;
  private startReject: ((err: Error) => void) | undefined;
  private started = false;
  private closed = false;
  private events: HostEvents | undefined;
  /** Messages that arrived before an engine subscribed; delivered on subscribe. */
  private backlog: string[] = [];
  private lastWrite: Promise<void> = Promise.resolve();

  readonly start: Promise<StartLine>;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {
    this.start = new Promise<StartLine>((resolve, reject) => {
      this.startResolve = resolve;
      this.startReject = reject;
    });
    // A host that never sends start must not leave an unhandled rejection behind.
    this.start.catch(() => undefined);
    const splitter = new LineSplitter(
      MAX_LINE_BYTES,
      (line) => this.handleLine(line),
      () => this.log('warn', 'dropped an overlong line from the host'),
    );
    input.on('data', (chunk: Buffer) => splitter.push(chunk));
    input.on('end', () => {
      splitter.end();
      this.handleEnd();
    });
    input.on('error', () => this.handleEnd());
  }

  /** Writes one protocol line; resolves once it was handed to the OS. */
  send(line: RunnerToHostLine): Promise<void> {
    const data = encodeLine(line);
    return this.writeRaw(data);
  }

  /** Raw stdout access, only for the echo engine's scripted garbage. */
  writeRaw(data: string): Promise<void> {
    // Resolving on the write callback lets callers that await it respect backpressure.
    const write = new Promise<void>((resolve) => {
      this.output.write(data, () => resolve());
    });
    this.lastWrite = this.lastWrite.then(() => write);
    return write;
  }

  /** Resolves when everything written so far has been flushed. */
  flush(): Promise<void> {
    return this.lastWrite;
  }

  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void {
    void this.send({ type: 'log', level, msg: msg.length > 8000 ? msg.slice(0, 8000) + '…' : msg });
  }

  /** Subscribes the engine to follow-up messages and close. */
  subscribe(events: HostEvents): void {
    this.events = events;
    const backlog = this.backlog;
    this.backlog = [];
    for (const text of backlog) events.onMessage(text);
    if (this.closed) events.onClose();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The turns of a run, in order: the start prompt, then each follow-up as it
   * arrives; ends once the host has closed the run and every prompt was taken.
   * For engines that answer one prompt at a time (subscribes the engine).
   */
  async *prompts(first: string): AsyncGenerator<string> {
    const queue: string[] = [first];
    let wake: (() => void) | undefined;
    this.subscribe({
      onMessage: (text) => {
        queue.push(text);
        wake?.();
      },
      onClose: () => wake?.(),
    });
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  }

  /** Asks the host to run a tool; the host validates and authorizes, the runner never decides. */
  callTool(name: string, args: unknown): Promise<ToolOutcome> {
    const id = `call-${this.nextToolId++}`;
    return new Promise<ToolOutcome>((resolve) => {
      this.pendingTools.set(id, resolve);
      void this.send({ type: 'tool_call', id, name, args });
    });
  }

  private handleLine(raw: string): void {
    const parsed = parseHostLine(raw);
    if (!parsed.ok) {
      this.log('warn', `dropped host line (${parsed.reason}): ${parsed.detail}`);
      return;
    }
    this.dispatch(parsed.line);
  }

  private dispatch(line: HostToRunnerLine): void {
    switch (line.type) {
      case 'start':
        if (this.started) {
          this.log('warn', 'ignored a second start line');
          return;
        }
        this.started = true;
        this.startResolve?.(line);
        return;
      case 'message':
        if (this.events) this.events.onMessage(line.text);
        else this.backlog.push(line.text);
        return;
      case 'tool_result': {
        const resolve = this.pendingTools.get(line.id);
        if (!resolve) {
          this.log('warn', `tool_result for unknown call ${line.id}`);
          return;
        }
        this.pendingTools.delete(line.id);
        resolve(
          line.ok
            ? { ok: true, result: line.result }
            : { ok: false, error: line.error ?? 'tool call failed' },
        );
        return;
      }
      case 'close':
        this.markClosed();
        return;
    }
  }

  private handleEnd(): void {
    if (!this.started) this.startReject?.(new Error('stdin ended before start'));
    // Nobody is left to answer pending tool calls.
    for (const [id, resolve] of this.pendingTools) {
      resolve({ ok: false, error: `host went away before answering ${id}` });
    }
    this.pendingTools.clear();
    this.markClosed();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.events?.onClose();
  }
}
