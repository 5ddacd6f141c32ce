// The zod-free half of the host ↔ runner protocol: constants, line framing and
// encoding. The runner bundles only this (plus its own validator in
// runner/host-lines.ts), so a lite or echo run never loads zod.

import type { HostToRunnerLine, RunnerToHostLine } from './protocol.js';

/** Longest accepted line in either direction, in bytes. */
export const MAX_LINE_BYTES = 256 * 1024;

export const ENGINES = ['claude-code', 'lite', 'echo'] as const;
export type Engine = (typeof ENGINES)[number];

/** Every engine but the scripted `echo` talks to the model through the broker. */
export function engineUsesModel(engine: Engine): boolean {
  return engine !== 'echo';
}

export const TOOL_NAMES = [
  'send_message',
  'schedule_task',
  'list_tasks',
  'get_task',
  'update_task',
  'pause_task',
  'resume_task',
  'cancel_task',
  'list_groups',
  'register_group',
  'unregister_group',
  'read_egress_allowlist',
  'send_file',
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** Every `type` either side may send; a line with another type is `unknown_message_type`. */
export const KNOWN_LINE_TYPES: readonly string[] = [
  'ready',
  'tool_call',
  'output',
  'log',
  'done',
  'start',
  'message',
  'tool_result',
  'close',
];

export type ParsedLine<T> =
  { ok: true; line: T } | { ok: false; reason: 'malformed_line' | 'unknown_message_type'; detail: string };

/** The checks every line gets before its shape is looked at: the size cap, then JSON. */
export function decodeLine(
  raw: string,
): { ok: true; value: unknown } | Extract<ParsedLine<never>, { ok: false }> {
  if (Buffer.byteLength(raw, 'utf8') > MAX_LINE_BYTES) {
    return { ok: false, reason: 'malformed_line', detail: 'line too long' };
  }
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    return { ok: false, reason: 'malformed_line', detail: 'not JSON' };
  }
}

// Framing shared by both ends: a line over the cap is dropped as it streams in,
// never buffered whole, so a runaway writer cannot grow the reader's memory.
/** Splits a byte stream into lines, dropping (not buffering) any line over `maxLineBytes`. */
export class LineSplitter {
  private chunks: Buffer[] = [];
  private pendingBytes = 0;
  private discarding = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverlong: () => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!this.discarding) {
        if (this.pendingBytes + piece.length > this.maxLineBytes) {
          this.discarding = true;
          this.chunks = [];
          this.pendingBytes = 0;
          this.onOverlong();
        } else if (piece.length > 0) {
          this.chunks.push(piece);
          this.pendingBytes += piece.length;
        }
      }
      if (nl === -1) break;
      if (!this.discarding) {
        const line = Buffer.concat(this.chunks).toString('utf8');
        this.chunks = [];
        this.pendingBytes = 0;
        if (line.trim() !== '') this.onLine(line);
      }
      this.discarding = false;
      start = nl + 1;
    }
  }

  /** Delivers a final unterminated line, if any. */
  end(): void {
    if (!this.discarding && this.pendingBytes > 0) {
      const line = Buffer.concat(this.chunks).toString('utf8');
      if (line.trim() !== '') this.onLine(line);
    }
    this.chunks = [];
    this.pendingBytes = 0;
    this.discarding = false;
  }
}

export function encodeLine(line: HostToRunnerLine | RunnerToHostLine): string {
  return JSON.stringify(line) + '\n';
}
