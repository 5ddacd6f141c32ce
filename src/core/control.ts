// The control socket's protocol: how `nanoclaw` commands talk to the running
// host. One host owns a data dir; while it runs, admin commands are executed
// inside it (so a change takes effect at once) and `chat` attaches to it as a
// console. JSON lines both ways, each line capped. Pure: schemas and codes only;
// the server (src/cli/control-server.ts) and client (control-client.ts) share them.

import * as z from './schema.js';

/** Bumped when a request or reply changes shape; a mismatch is refused with E_CONTROL_VERSION. */
export const CONTROL_VERSION = 1;
/** A longer line is a protocol error: above any chat message (the router bounds what reaches a prompt). */
export const MAX_CONTROL_LINE_BYTES = 64 * 1024 * 1024;
/** Inside the data dir: the directory is 0700 and the socket 0600, owner only. */
export const CONTROL_DIR = 'control';
export const CONTROL_SOCKET = 'host.sock';

export type ControlErrorCode =
  'E_CONTROL_VERSION' | 'E_CONTROL_REQUEST' | 'E_NO_MAIN_GROUP' | 'E_HOST_STOPPING' | 'E_INTERNAL';

const requestBase = { v: z.int(), id: z.int().check(z.nonnegative()) };

export const controlRequestSchema = z.discriminatedUnion('op', [
  /** Runs one CLI command (argv after `nanoclaw`) inside the host; the reply carries its output. */
  z.object({
    ...requestBase,
    op: z.literal('command'),
    args: z.object({ argv: z.array(z.string()).check(z.maxLength(200)) }),
  }),
  /** Turns the connection into a console of the main group (see ChatFrame / ConsoleEvent). */
  z.object({
    ...requestBase,
    op: z.literal('chat'),
    // cwd: where the console's relative attachment paths start (the client's working directory).
    args: z.object({ json: z.boolean(), cwd: z.optional(z.string().check(z.maxLength(4096))) }),
  }),
  /** One input line of an attached console. */
  z.object({ ...requestBase, op: z.literal('chat.input'), args: z.object({ line: z.string() }) }),
  /** The console's input ended: the host answers what is pending for it, then sends `done`. */
  z.object({ ...requestBase, op: z.literal('chat.end'), args: z.optional(z.object({})) }),
]);
export type ControlRequest = z.infer<typeof controlRequestSchema>;

export interface CommandOutput {
  exitCode: number;
  /** Lines in the order printed; `err` lines go to the client's stderr. */
  lines: Array<{ stream: 'out' | 'err'; text: string }>;
}

export interface ChatAttached {
  mainJid: string;
  mainName: string;
  assistantName: string;
}

export type ControlReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: ControlErrorCode; message: string } };

/** Pushed to an attached console (no id): text for stdout or stderr, and the end. */
export type ConsoleEvent =
  { event: 'out'; data: string } | { event: 'err'; data: string } | { event: 'done'; exitCode: number };

const replySchema = z.union([
  z.object({ id: z.number(), ok: z.literal(true), result: z.unknown() }),
  z.object({
    id: z.number(),
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
]);
const consoleEventSchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('out'), data: z.string() }),
  z.object({ event: z.literal('err'), data: z.string() }),
  z.object({ event: z.literal('done'), exitCode: z.int() }),
]);

export const commandOutputSchema = z.object({
  exitCode: z.int(),
  lines: z.array(z.object({ stream: z.enum(['out', 'err']), text: z.string() })),
});
export const chatAttachedSchema = z.object({
  mainJid: z.string(),
  mainName: z.string(),
  assistantName: z.string(),
});

export type ParsedRequest =
  { ok: true; request: ControlRequest } | { ok: false; id: number; code: ControlErrorCode; message: string };

/** Validates one request line; a wrong version is named so the user knows which side to restart. */
export function parseControlRequest(line: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, id: 0, code: 'E_CONTROL_REQUEST', message: 'request is not JSON' };
  }
  const id = typeof (value as { id?: unknown })?.id === 'number' ? (value as { id: number }).id : 0;
  const version = (value as { v?: unknown })?.v;
  if (version !== CONTROL_VERSION) {
    return {
      ok: false,
      id,
      code: 'E_CONTROL_VERSION',
      message:
        `the running host speaks control protocol ${CONTROL_VERSION}, this command ${String(version)}; ` +
        'restart the host so both are the same version (nanoclaw service restart, or stop and start it)',
    };
  }
  const parsed = controlRequestSchema.safeParse(value);
  if (!parsed.success) {
    return {
      ok: false,
      id,
      code: 'E_CONTROL_REQUEST',
      message: `malformed request: ${parsed.error.issues[0]?.message}`,
    };
  }
  return { ok: true, request: parsed.data };
}

/** What the client reads: a reply to one of its requests, or a console event. */
export type ServerLine = { kind: 'reply'; reply: ControlReply } | { kind: 'event'; event: ConsoleEvent };

export function parseServerLine(line: string): ServerLine | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  const event = consoleEventSchema.safeParse(value);
  if (event.success) return { kind: 'event', event: event.data };
  const reply = replySchema.safeParse(value);
  if (!reply.success) return null;
  return { kind: 'reply', reply: reply.data as ControlReply };
}
