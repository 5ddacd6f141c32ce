// The host ↔ runner protocol: JSON Lines over the runner's stdin/stdout. The
// host validates with these zod schemas; the runner takes only their types and
// the zod-free framing (protocol-frame.ts) and checks host lines with its own
// validator (runner/host-lines.ts, kept equal by a unit test). Every received line is validated;
// the host never trusts an identity the runner claims — it knows the run's group
// because it started the run.

import * as z from './schema.js';

export {
  ENGINES,
  KNOWN_LINE_TYPES,
  LineSplitter,
  MAX_LINE_BYTES,
  TOOL_NAMES,
  encodeLine,
  engineUsesModel,
  type Engine,
  type ParsedLine,
  type ToolName,
} from './protocol-frame.js';
import { decodeLine, ENGINES, KNOWN_LINE_TYPES, type ParsedLine } from './protocol-frame.js';

// ---- host → runner -------------------------------------------------------

export const startLine = z.object({
  type: z.literal('start'),
  runId: z.string(),
  prompt: z.string(),
  sessionId: z.optional(z.string()),
  group: z.object({ folder: z.string(), isMain: z.boolean(), name: z.string() }),
  assistantName: z.string(),
  scheduledTask: z.optional(z.object({ id: z.string(), contextMode: z.enum(['group', 'isolated']) })),
  engine: z.enum(ENGINES),
  /** The model to ask for; absent means Claude Code's default. */
  modelName: z.optional(z.string().check(z.minLength(1), z.maxLength(100))),
  /** Paths as the runner sees them (inside the sandbox, or host paths for `none`). */
  paths: z.object({
    groupDir: z.string(),
    globalDir: z.string(),
    /** Home of the agent; `.claude/` under it holds the group's session state. */
    homeDir: z.string(),
  }),
  /** How the runner reaches the model through the broker; absent for engines that need no model. */
  model: z.optional(
    z.object({
      socketPath: z.string(),
      /** Random per-run value the broker checks; worthless outside this run. */
      placeholderKey: z.string(),
      /** Which API the socket speaks: the Messages API, or an OpenAI-compatible one (lite only). */
      api: z.optional(z.enum(['anthropic', 'openai'])),
    }),
  ),
  /** When the lite engine summarises older turns: at `atFraction` of a `windowTokens` context. */
  compaction: z.optional(
    z.object({ windowTokens: z.int().check(z.positive()), atFraction: z.number().check(z.gt(0), z.lt(1)) }),
  ),
  /** Present only when the group has an egress allowlist (otherwise no bridge at all). */
  egress: z.optional(z.object({ socketPath: z.string() })),
});
export type StartLine = z.infer<typeof startLine>;

export const hostToRunnerLine = z.discriminatedUnion('type', [
  startLine,
  z.object({ type: z.literal('message'), text: z.string() }),
  z.object({
    type: z.literal('tool_result'),
    id: z.string(),
    ok: z.boolean(),
    result: z.optional(z.unknown()),
    error: z.optional(z.string()),
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
    id: z.string().check(z.maxLength(128)),
    name: z.string().check(z.maxLength(128)),
    args: z.unknown(),
  }),
  // One `output` line ends one turn (one prompt given to the run): the host commits
  // the answer and marks that turn's messages done in one transaction.
  z.object({
    type: z.literal('output'),
    text: z.nullable(z.string()),
    sessionId: z.optional(z.string()),
  }),
  z.object({
    type: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    msg: z.string().check(z.maxLength(8192)),
  }),
  z.object({
    type: z.literal('done'),
    sessionId: z.optional(z.string()),
    error: z.optional(z.string()),
  }),
]);
export type RunnerToHostLine = z.infer<typeof runnerToHostLine>;

function parseWith<T>(schema: z.ZodMiniType<T>, raw: string): ParsedLine<T> {
  const decoded = decodeLine(raw);
  if (!decoded.ok) return decoded;
  const { value } = decoded;
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, line: result.data };
  const type = (value as { type?: unknown } | null)?.type;
  const known = typeof type === 'string' && KNOWN_LINE_TYPES.includes(type);
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
