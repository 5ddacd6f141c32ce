// The host ↔ runner protocol: JSON Lines over the runner's stdin/stdout. Shared
// by both sides (the runner bundles it). Every received line is validated here;
// the host never trusts an identity the runner claims — it knows the run's group
// because it started the run.

import { z } from 'zod';

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

// ---- host → runner -------------------------------------------------------

export const startLine = z.object({
  type: z.literal('start'),
  runId: z.string(),
  prompt: z.string(),
  sessionId: z.string().optional(),
  group: z.object({ folder: z.string(), isMain: z.boolean(), name: z.string() }),
  assistantName: z.string(),
  scheduledTask: z.object({ id: z.string(), contextMode: z.enum(['group', 'isolated']) }).optional(),
  engine: z.enum(ENGINES),
  /** The model to ask for; absent means Claude Code's default. */
  modelName: z.string().min(1).max(100).optional(),
  /** Paths as the runner sees them (inside the sandbox, or host paths for `none`). */
  paths: z.object({
    groupDir: z.string(),
    globalDir: z.string(),
    /** Home of the agent; `.claude/` under it holds the group's session state. */
    homeDir: z.string(),
  }),
  /** How the runner reaches the model through the broker; absent for engines that need no model. */
  model: z
    .object({
      socketPath: z.string(),
      /** Random per-run value the broker checks; worthless outside this run. */
      placeholderKey: z.string(),
      /** Which API the socket speaks: the Messages API, or an OpenAI-compatible one (lite only). */
      api: z.enum(['anthropic', 'openai']).optional(),
    })
    .optional(),
  /** When the lite engine summarises older turns: at `atFraction` of a `windowTokens` context. */
  compaction: z
    .object({ windowTokens: z.number().int().positive(), atFraction: z.number().gt(0).lt(1) })
    .optional(),
  /** Present only when the group has an egress allowlist (otherwise no bridge at all). */
  egress: z.object({ socketPath: z.string() }).optional(),
});
export type StartLine = z.infer<typeof startLine>;

export const hostToRunnerLine = z.discriminatedUnion('type', [
  startLine,
  z.object({ type: z.literal('message'), text: z.string() }),
  z.object({
    type: z.literal('tool_result'),
    id: z.string(),
    ok: z.boolean(),
    result: z.unknown().optional(),
    error: z.string().optional(),
  }),
  z.object({ type: z.literal('close') }),
]);
export type HostToRunnerLine = z.infer<typeof hostToRunnerLine>;

// ---- runner → host -------------------------------------------------------

export const runnerToHostLine = z.discriminatedUnion('type', [
  /** Emitted once the runner process has booted and can read `start`. */
  z.object({ type: z.literal('ready') }),
  z.object({
    type: z.literal('tool_call'),
    id: z.string().max(128),
    name: z.string().max(128),
    args: z.unknown(),
  }),
  // One `output` line ends one turn (one prompt given to the run): the host commits
  // the answer and marks that turn's messages done in one transaction.
  z.object({
    type: z.literal('output'),
    text: z.string().nullable(),
    sessionId: z.string().optional(),
  }),
  z.object({
    type: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    msg: z.string().max(8192),
  }),
  z.object({
    type: z.literal('done'),
    sessionId: z.string().optional(),
    error: z.string().optional(),
  }),
]);
export type RunnerToHostLine = z.infer<typeof runnerToHostLine>;

export type ParsedLine<T> =
  { ok: true; line: T } | { ok: false; reason: 'malformed_line' | 'unknown_message_type'; detail: string };

function parseWith<T>(schema: z.ZodType<T>, raw: string): ParsedLine<T> {
  if (Buffer.byteLength(raw, 'utf8') > MAX_LINE_BYTES) {
    return { ok: false, reason: 'malformed_line', detail: 'line too long' };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'malformed_line', detail: 'not JSON' };
  }
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, line: result.data };
  const type = (value as { type?: unknown } | null)?.type;
  const known =
    typeof type === 'string' &&
    ['ready', 'tool_call', 'output', 'log', 'done', 'start', 'message', 'tool_result', 'close'].includes(
      type,
    );
  return {
    ok: false,
    reason: known ? 'malformed_line' : 'unknown_message_type',
    detail: result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
  };
}

export function parseRunnerLine(raw: string): ParsedLine<RunnerToHostLine> {
  return parseWith(runnerToHostLine, raw);
}

export function parseHostLine(raw: string): ParsedLine<HostToRunnerLine> {
  return parseWith(hostToRunnerLine, raw);
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
