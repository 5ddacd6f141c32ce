// The runner's validator for host → runner lines: the same rules as the host's
// zod schemas (src/core/protocol.ts), written out by hand so a run never loads
// zod (~13 MB of a lite run's memory). Unknown keys are dropped, as zod does;
// test/unit/runner/host-lines.test.ts feeds both the same lines so they cannot drift.

import { decodeLine, KNOWN_LINE_TYPES, type ParsedLine } from '../src/core/protocol-frame.js';
import type { HostToRunnerLine, StartLine } from '../src/core/protocol.js';

type Obj = Record<string, unknown>;

/** Thrown inside the validator only; turned into a `malformed_line` result. */
class Invalid extends Error {}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function obj(value: unknown, at: string): Obj {
  if (!isObj(value)) throw new Invalid(`${at}: expected object`);
  return value;
}

function str(o: Obj, key: string, at: string): string {
  const value = o[key];
  if (typeof value !== 'string') throw new Invalid(`${at}${key}: expected string`);
  return value;
}

function bool(o: Obj, key: string, at: string): boolean {
  const value = o[key];
  if (typeof value !== 'boolean') throw new Invalid(`${at}${key}: expected boolean`);
  return value;
}

function oneOf<T extends string>(o: Obj, key: string, options: readonly T[], at: string): T {
  const value = o[key];
  if (typeof value !== 'string' || !(options as readonly string[]).includes(value)) {
    throw new Invalid(`${at}${key}: expected one of ${options.join('|')}`);
  }
  return value as T;
}

/** Copies `key` through `read` when present; an absent key stays absent, as zod's `.optional()` leaves it. */
function opt<T>(o: Obj, key: string, read: (o: Obj, key: string) => T): Record<string, T> {
  return o[key] === undefined ? {} : { [key]: read(o, key) };
}

function parseStart(o: Obj): StartLine {
  const group = obj(o.group, 'group');
  const paths = obj(o.paths, 'paths');
  return {
    type: 'start',
    runId: str(o, 'runId', ''),
    prompt: str(o, 'prompt', ''),
    ...opt(o, 'sessionId', (x, k) => str(x, k, '')),
    group: {
      folder: str(group, 'folder', 'group.'),
      isMain: bool(group, 'isMain', 'group.'),
      name: str(group, 'name', 'group.'),
    },
    assistantName: str(o, 'assistantName', ''),
    ...opt(o, 'scheduledTask', (x, k) => {
      const task = obj(x[k], k);
      return {
        id: str(task, 'id', `${k}.`),
        contextMode: oneOf(task, 'contextMode', ['group', 'isolated'], `${k}.`),
      };
    }),
    engine: oneOf(o, 'engine', ['claude-code', 'lite', 'echo'], ''),
    ...opt(o, 'modelName', (x, k) => {
      const name = str(x, k, '');
      if (name.length < 1 || name.length > 100) throw new Invalid(`${k}: expected 1 to 100 characters`);
      return name;
    }),
    paths: {
      groupDir: str(paths, 'groupDir', 'paths.'),
      globalDir: str(paths, 'globalDir', 'paths.'),
      homeDir: str(paths, 'homeDir', 'paths.'),
    },
    ...opt(o, 'model', (x, k) => {
      const model = obj(x[k], k);
      return {
        socketPath: str(model, 'socketPath', `${k}.`),
        placeholderKey: str(model, 'placeholderKey', `${k}.`),
        ...opt(model, 'api', (m, a) => oneOf(m, a, ['anthropic', 'openai'], `${k}.`)),
      };
    }),
    ...opt(o, 'compaction', (x, k) => {
      const compaction = obj(x[k], k);
      const windowTokens = compaction.windowTokens;
      if (typeof windowTokens !== 'number' || !Number.isSafeInteger(windowTokens) || windowTokens <= 0) {
        throw new Invalid(`${k}.windowTokens: expected a positive integer`);
      }
      const atFraction = compaction.atFraction;
      if (typeof atFraction !== 'number' || !(atFraction > 0 && atFraction < 1)) {
        throw new Invalid(`${k}.atFraction: expected a number between 0 and 1`);
      }
      return { windowTokens, atFraction };
    }),
    ...opt(o, 'egress', (x, k) => ({ socketPath: str(obj(x[k], k), 'socketPath', `${k}.`) })),
  } as StartLine;
}

function parseObject(o: Obj): HostToRunnerLine {
  switch (o.type) {
    case 'start':
      return parseStart(o);
    case 'message':
      return { type: 'message', text: str(o, 'text', '') };
    case 'tool_result':
      return {
        type: 'tool_result',
        id: str(o, 'id', ''),
        ok: bool(o, 'ok', ''),
        ...('result' in o ? { result: o.result } : {}),
        ...opt(o, 'error', (x, k) => str(x, k, '')),
      };
    case 'close':
      return { type: 'close' };
    default:
      throw new Invalid('type: not a host → runner line');
  }
}

/** Parses and validates one host line; the same answers as the host's `parseHostLine`. */
export function parseHostLine(raw: string): ParsedLine<HostToRunnerLine> {
  const decoded = decodeLine(raw);
  if (!decoded.ok) return decoded;
  const { value } = decoded;
  const type = isObj(value) ? value.type : undefined;
  try {
    if (!isObj(value)) throw new Invalid('(root): expected object');
    return { ok: true, line: parseObject(value) };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    const known = typeof type === 'string' && KNOWN_LINE_TYPES.includes(type);
    return { ok: false, reason: known ? 'malformed_line' : 'unknown_message_type', detail: err.message };
  }
}
