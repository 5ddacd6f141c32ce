// Typed configuration from the environment and an optional policy file
// (`<configDir>/config.json`), validated up front so a bad setting stops the host
// at start-up with a message naming the file, the line and the problem (SPEC §12).
// Defaults are sized for a 1 GB board.

import fs, { readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from '../core/schema.js';
import { ENGINES, type Engine } from '../core/protocol.js';
import { lineOf, pathKey, scanJson } from './json-location.js';

export const SANDBOX_KINDS = ['auto', 'bwrap', 'docker', 'apple', 'none'] as const;
export type SandboxKind = (typeof SANDBOX_KINDS)[number];

/** How voice notes become text on the host: `none` keeps the placeholder and the audio file. */
export const TRANSCRIBERS = ['none', 'openai-compatible'] as const;
export type TranscriberKind = (typeof TRANSCRIBERS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const CONFIG_FILE_NAME = 'config.json';
/** What `ConfigError.file` says when the bad value came from an environment variable. */
export const ENV_SOURCE = 'environment';

export interface SandboxLimits {
  readonly memoryMb: number;
  readonly pids: number;
  readonly fileSizeMb: number;
  /** RLIMIT_NOFILE inside each sandbox, far below the host's so no run can exhaust it. */
  readonly openFiles: number;
}

export interface ConfigPaths {
  readonly storeDir: string;
  readonly dbPath: string;
  readonly authDir: string;
  readonly groupsDir: string;
  readonly dataDir: string;
  readonly sessionsDir: string;
  readonly runsDir: string;
  readonly logsDir: string;
}

export interface Config {
  /** Data root (store/, groups/, data/, logs/). */
  readonly homeDir: string;
  /** Policy directory (config.json, allowlists); never mounted into a sandbox. */
  readonly configDir: string;
  readonly assistantName: string;
  readonly timeZone: string;
  readonly sandbox: SandboxKind;
  readonly engine: Engine;
  readonly allowUnsandboxedMain: boolean;
  readonly allowUnenforcedEgress: boolean;
  readonly dockerBinary: string;
  /** Where the broker forwards model requests; no trailing slash. */
  readonly upstreamBaseUrl: string;
  /** The model agents ask for (e.g. "claude-sonnet-4-5"); null means Claude Code's default. */
  readonly model: string | null;
  readonly logLevel: string;
  readonly maxConcurrentRuns: number;
  readonly maxPendingTasksPerGroup: number;
  readonly idleTimeoutMs: number;
  readonly runTimeoutMs: number;
  /** Absolute limit on one run's life; no output or activity resets it (SPEC §5.4). */
  readonly runMaxWallMs: number;
  /** Per-group disk quota: the group folder plus its session dir; runs stop past it. */
  readonly groupDiskQuotaMb: number;
  /** Active (not paused or finished) scheduled tasks one group may have. */
  readonly maxActiveTasksPerGroup: number;
  readonly shutdownGraceMs: number;
  readonly maxOutputBytes: number;
  /** Concurrent connections one run may hold on each broker socket (model, egress); more are refused and audited. */
  readonly maxBrokerConnectionsPerRun: number;
  readonly retryBaseMs: number;
  readonly maxRetries: number;
  /**
   * How long a retryable model failure (unreachable, overloaded, rate-limited,
   * 5xx, no answer) must last before the waiting chat hears that the assistant
   * keeps trying; a blip the next try fixes says nothing.
   */
  readonly modelTroubleNoticeMs: number;
  /** How long the broker waits for the response headers of a streamed model request before it counts as unreachable. */
  readonly modelResponseTimeoutMs: number;
  readonly minTaskIntervalMs: number;
  readonly messageRetentionDays: number;
  readonly outboxRetryBaseMs: number;
  readonly outboxRetryMaxMs: number;
  readonly outboxMaxAttempts: number;
  /** Budget of one prompt (as the JSON line the runner gets); oldest context is left out first. */
  readonly maxPromptBytes: number;
  /** One message longer than this is cut in the prompt; its full text goes to a file in the group folder. */
  readonly maxMessageBytes: number;
  /** New runs wait while the data dir's disk has less free space than this (SQLite keeps room). */
  readonly minFreeDiskMb: number;
  /** The model's context window in tokens; the lite engine compacts against it. */
  readonly contextWindowTokens: number;
  /** The lite engine summarises older turns once a request's context passes this fraction of the window. */
  readonly compactAtFraction: number;
  /**
   * An OpenAI-compatible chat-completions endpoint (Ollama, llama.cpp, a hosted
   * one) that lite groups may use instead of the Messages API; null for none.
   * `baseUrl` is what comes before `/v1/chat/completions`.
   */
  readonly openaiProvider: { readonly baseUrl: string; readonly model: string } | null;
  readonly sandboxLimits: SandboxLimits;
  /** One inbound file (photo, voice note, document) larger than this is not stored; the message keeps a note. */
  readonly maxMediaFileMb: number;
  /** Media one group may keep (`groups/<folder>/media`); past it new files are refused with a note. */
  readonly groupMediaQuotaMb: number;
  readonly transcriber: TranscriberKind;
  /** Base URL of an OpenAI-compatible speech service (`<url>/v1/audio/transcriptions`); no trailing slash. */
  readonly transcriberUrl: string;
  readonly transcriberModel: string;
  /** How long one transcription may take before the voice note falls back to its placeholder. */
  readonly transcriberTimeoutMs: number;
  /** All absolute, under homeDir. */
  readonly paths: ConfigPaths;
}

/** The knobs config.json may set: everything except locations. */
export type ConfigKnobs = Omit<Config, 'homeDir' | 'configDir' | 'paths'>;

export class ConfigError extends Error {
  /** Absolute path of the offending file, or `ENV_SOURCE` for an environment variable. */
  readonly file: string;
  readonly line?: number;
  /** Dotted field path (file) or variable name (environment). */
  readonly field?: string;

  constructor(problem: string, where: { file: string; line?: number; field?: string }) {
    super(`${where.file}${where.line === undefined ? '' : `:${where.line}`}: ${problem}`);
    this.name = 'ConfigError';
    this.file = where.file;
    if (where.line !== undefined) this.line = where.line;
    if (where.field !== undefined) this.field = where.field;
  }
}

// Time zones are resolved from the system's zoneinfo first: the first use of
// Intl pages in ICU's zone data (~10 MB of RSS), which an idle host on a 1 GB
// board should only pay once it really schedules something. Intl remains the
// fallback, and the authority whenever zoneinfo cannot answer.
const ZONEINFO_DIR = '/usr/share/zoneinfo';
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

function defaultTimeZone(): string {
  try {
    const match = /zoneinfo\/(.+)$/.exec(fs.readlinkSync('/etc/localtime'));
    if (match && isTimeZone(match[1])) return match[1];
  } catch {
    // No /etc/localtime link: ask Intl below.
  }
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function defaultKnobs(): ConfigKnobs {
  return {
    assistantName: 'Andy',
    timeZone: defaultTimeZone(),
    sandbox: 'auto',
    engine: 'claude-code',
    allowUnsandboxedMain: false,
    allowUnenforcedEgress: false,
    dockerBinary: 'docker',
    upstreamBaseUrl: 'https://api.anthropic.com',
    model: null,
    logLevel: 'info',
    maxConcurrentRuns: 2,
    maxPendingTasksPerGroup: 20,
    idleTimeoutMs: 300_000,
    runTimeoutMs: 900_000,
    runMaxWallMs: 1_800_000,
    groupDiskQuotaMb: 1024,
    maxActiveTasksPerGroup: 50,
    shutdownGraceMs: 10_000,
    maxOutputBytes: 1_048_576,
    maxBrokerConnectionsPerRun: 32,
    retryBaseMs: 5_000,
    maxRetries: 5,
    modelTroubleNoticeMs: 3_000,
    modelResponseTimeoutMs: 60_000,
    minTaskIntervalMs: 60_000,
    messageRetentionDays: 90,
    outboxRetryBaseMs: 2_000,
    outboxRetryMaxMs: 300_000,
    outboxMaxAttempts: 10,
    maxPromptBytes: 96 * 1024,
    maxMessageBytes: 16 * 1024,
    minFreeDiskMb: 64,
    contextWindowTokens: 200_000,
    compactAtFraction: 0.75,
    openaiProvider: null,
    sandboxLimits: { memoryMb: 1024, pids: 256, fileSizeMb: 512, openFiles: 1024 },
    maxMediaFileMb: 16,
    groupMediaQuotaMb: 256,
    transcriber: 'none',
    transcriberUrl: 'https://api.openai.com',
    transcriberModel: 'whisper-1',
    transcriberTimeoutMs: 60_000,
  };
}

// ---- value checks shared by the file schema and the environment ---------------

const ASSISTANT_NAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N}_.-]{0,31}$/u;
const ASSISTANT_NAME_RULE = 'expected 1–32 letters, digits, "_", "." or "-" without spaces, e.g. "Andy"';

function isTimeZone(zone: string): boolean {
  if (ZONE_NAME.test(zone)) {
    try {
      if (fs.statSync(path.join(ZONEINFO_DIR, zone)).isFile()) return true;
    } catch {
      // Not in the system's zoneinfo: ICU may still know it.
    }
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
const TIME_ZONE_RULE = 'expected an IANA time zone, e.g. "Europe/Berlin" or "UTC"';

const MODEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/;
const MODEL_RULE = 'expected a model name, e.g. "claude-sonnet-4-5"';

function normaliseUrl(url: string): string | null {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
    return url.replace(/\/+$/, '');
  } catch {
    return null;
  }
}
const URL_RULE = 'expected an http(s) URL, e.g. "https://api.anthropic.com"';

function intAtLeast(min: number) {
  const rule = `expected a whole number ≥ ${min}`;
  return z.optional(z.int({ error: rule }).check(z.gte(min, { error: rule })));
}

/** An optional number in [min, max]; every failure says `rule`. */
function between(min: number, max: number, kind: typeof z.int | typeof z.number, rule: string) {
  return z.optional(kind({ error: rule }).check(z.gte(min, { error: rule }), z.lte(max, { error: rule })));
}

function nonEmpty(rule: string) {
  return z.optional(z.string({ error: rule }).check(z.minLength(1, { error: rule })));
}

function httpUrl() {
  return z.string({ error: URL_RULE }).check(z.refine((u) => normaliseUrl(u) !== null, { error: URL_RULE }));
}

function modelName() {
  return z.string({ error: MODEL_RULE }).check(z.regex(MODEL_PATTERN, { error: MODEL_RULE }));
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.optional(z.enum(values, { error: `expected one of ${values.map((v) => `"${v}"`).join(', ')}` }));
}

const fileSchema = z.strictObject({
  assistantName: z.optional(
    z
      .string({ error: ASSISTANT_NAME_RULE })
      .check(z.regex(ASSISTANT_NAME_PATTERN, { error: ASSISTANT_NAME_RULE })),
  ),
  timeZone: z.optional(
    z.string({ error: TIME_ZONE_RULE }).check(z.refine(isTimeZone, { error: TIME_ZONE_RULE })),
  ),
  sandbox: oneOf(SANDBOX_KINDS),
  engine: oneOf(ENGINES),
  allowUnsandboxedMain: z.optional(z.boolean({ error: 'expected true or false' })),
  allowUnenforcedEgress: z.optional(z.boolean({ error: 'expected true or false' })),
  dockerBinary: nonEmpty('expected a command name or path, e.g. "docker" or "podman"'),
  upstreamBaseUrl: z.optional(httpUrl()),
  model: z.optional(z.nullable(modelName())),
  logLevel: oneOf(LOG_LEVELS),
  maxConcurrentRuns: intAtLeast(1),
  maxPendingTasksPerGroup: intAtLeast(1),
  idleTimeoutMs: intAtLeast(1),
  runTimeoutMs: intAtLeast(1),
  runMaxWallMs: intAtLeast(1),
  groupDiskQuotaMb: intAtLeast(1),
  maxActiveTasksPerGroup: intAtLeast(1),
  shutdownGraceMs: intAtLeast(0),
  maxOutputBytes: intAtLeast(1),
  maxBrokerConnectionsPerRun: intAtLeast(1),
  retryBaseMs: intAtLeast(1),
  maxRetries: intAtLeast(0),
  modelTroubleNoticeMs: intAtLeast(0),
  modelResponseTimeoutMs: intAtLeast(1000),
  minTaskIntervalMs: intAtLeast(1),
  messageRetentionDays: intAtLeast(1),
  outboxRetryBaseMs: intAtLeast(1),
  outboxRetryMaxMs: intAtLeast(1),
  outboxMaxAttempts: intAtLeast(1),
  // The runner's line cap is 256 KiB; a prompt must leave room for the start line's other fields.
  maxPromptBytes: between(4096, 200_000, z.int, 'expected a whole number between 4096 and 200000'),
  maxMessageBytes: intAtLeast(256),
  minFreeDiskMb: intAtLeast(0),
  maxMediaFileMb: intAtLeast(1),
  groupMediaQuotaMb: intAtLeast(1),
  transcriber: oneOf(TRANSCRIBERS),
  transcriberUrl: z.optional(httpUrl()),
  transcriberModel: nonEmpty('expected a model name, e.g. "whisper-1"'),
  transcriberTimeoutMs: intAtLeast(1000),
  contextWindowTokens: intAtLeast(1000),
  compactAtFraction: between(0.1, 0.95, z.number, 'expected a fraction between 0.1 and 0.95, e.g. 0.75'),
  openaiProvider: z.optional(
    z.nullable(
      z.strictObject(
        { baseUrl: httpUrl(), model: modelName() },
        { error: 'expected {"baseUrl": "http://127.0.0.1:11434", "model": "qwen2.5:7b"} or null' },
      ),
    ),
  ),
  sandboxLimits: z.optional(
    z.strictObject(
      { memoryMb: intAtLeast(16), pids: intAtLeast(8), fileSizeMb: intAtLeast(1), openFiles: intAtLeast(64) },
      { error: 'expected an object, e.g. {"memoryMb": 1024}' },
    ),
  ),
});
type FileKnobs = z.infer<typeof fileSchema>;

// ---- config.json ------------------------------------------------------------

function valueAt(root: unknown, at: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of at) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function readConfigFile(file: string): FileKnobs {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read the file: ${(err as Error).message}`, { file });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  const scan = scanJson(text);
  if (!scan.ok) {
    throw new ConfigError(`invalid JSON: ${scan.problem}`, { file, line: lineOf(text, scan.offset) });
  }
  const raw: unknown = JSON.parse(text);
  const parsed = fileSchema.safeParse(raw);
  if (parsed.success) return parsed.data;

  const issue = parsed.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    const field = [...issue.path, key].map(String).join('.');
    const offset = scan.keyOffsets.get(pathKey([...issue.path, key]));
    const known =
      issue.path.length === 0
        ? Object.keys(fileSchema.shape).join(', ')
        : 'memoryMb, pids, fileSizeMb, openFiles';
    throw new ConfigError(`unknown setting "${field}" (known settings: ${known})`, {
      file,
      field,
      ...(offset === undefined ? {} : { line: lineOf(text, offset) }),
    });
  }
  if (issue.path.length === 0) {
    throw new ConfigError('expected a JSON object of settings, e.g. {"assistantName": "Andy"}', {
      file,
      line: 1,
    });
  }
  const field = issue.path.map(String).join('.');
  const offset = scan.keyOffsets.get(pathKey(issue.path));
  const got = JSON.stringify(valueAt(raw, issue.path));
  throw new ConfigError(`"${field}": ${issue.message}, got ${got}`, {
    file,
    field,
    ...(offset === undefined ? {} : { line: lineOf(text, offset) }),
  });
}

// ---- environment ------------------------------------------------------------

/** Empty variables count as unset: `TZ=` in a unit file should not be an error. */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function envError(name: string, value: string, rule: string): ConfigError {
  return new ConfigError(`${name}=${JSON.stringify(value)} is invalid: ${rule}`, {
    file: ENV_SOURCE,
    field: name,
  });
}

function envChoice<T extends string>(
  env: NodeJS.ProcessEnv,
  name: string,
  choices: readonly T[],
): T | undefined {
  const value = envValue(env, name);
  if (value === undefined) return undefined;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw envError(name, value, `expected one of ${choices.map((c) => `"${c}"`).join(', ')}`);
}

function envKnobs(env: NodeJS.ProcessEnv): Partial<ConfigKnobs> {
  const knobs: { -readonly [K in keyof ConfigKnobs]?: ConfigKnobs[K] } = {};

  const name = envValue(env, 'ASSISTANT_NAME');
  if (name !== undefined) {
    if (!ASSISTANT_NAME_PATTERN.test(name)) throw envError('ASSISTANT_NAME', name, ASSISTANT_NAME_RULE);
    knobs.assistantName = name;
  }

  // POSIX allows `TZ=:Area/City`; the colon only means "read from the zone database".
  const zone = envValue(env, 'TZ')?.replace(/^:/, '');
  if (zone !== undefined) {
    if (!isTimeZone(zone)) throw envError('TZ', zone, TIME_ZONE_RULE);
    knobs.timeZone = zone;
  }

  const sandbox = envChoice(env, 'NANOCLAW_SANDBOX', SANDBOX_KINDS);
  if (sandbox !== undefined) knobs.sandbox = sandbox;
  const engine = envChoice(env, 'NANOCLAW_ENGINE', ENGINES);
  if (engine !== undefined) knobs.engine = engine;
  const logLevel = envChoice(env, 'LOG_LEVEL', LOG_LEVELS);
  if (logLevel !== undefined) knobs.logLevel = logLevel;

  const model = envValue(env, 'NANOCLAW_MODEL');
  if (model !== undefined) {
    if (!MODEL_PATTERN.test(model)) throw envError('NANOCLAW_MODEL', model, MODEL_RULE);
    knobs.model = model;
  }

  const transcriber = envChoice(env, 'NANOCLAW_TRANSCRIBER', TRANSCRIBERS);
  if (transcriber !== undefined) knobs.transcriber = transcriber;
  const transcriberUrl = envValue(env, 'NANOCLAW_TRANSCRIBER_URL');
  if (transcriberUrl !== undefined) {
    const url = normaliseUrl(transcriberUrl);
    if (url === null) throw envError('NANOCLAW_TRANSCRIBER_URL', transcriberUrl, URL_RULE);
    knobs.transcriberUrl = url;
  }

  const upstream = envValue(env, 'ANTHROPIC_BASE_URL');
  if (upstream !== undefined) {
    const url = normaliseUrl(upstream);
    if (url === null) throw envError('ANTHROPIC_BASE_URL', upstream, URL_RULE);
    knobs.upstreamBaseUrl = url;
  }
  return knobs;
}

function expandHome(p: string, userHome: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(userHome, p.slice(1)) : p;
}

export interface LoadConfigOptions {
  env: NodeJS.ProcessEnv;
  /** Only resolves relative NANOCLAW_HOME / NANOCLAW_CONFIG_DIR values; never a default. */
  cwd: string;
  userHome: string;
  /** The host runs as root: see `defaultHomeDir`. */
  isRoot?: boolean;
}

/** Where a root host keeps its data when nothing else is set (the FHS place for a service's state). */
export const ROOT_HOME_DIR = '/var/lib/nanoclaw';

/**
 * The data root when NANOCLAW_HOME is unset: `$XDG_DATA_HOME/nanoclaw`, else
 * `~/.local/share/nanoclaw`. A root host uses /var/lib/nanoclaw instead: root's
 * own home is 0700, and bwrap runs as uid 1000, which must traverse the path to
 * every bind source.
 */
export function defaultHomeDir({ env, userHome, isRoot = false }: Omit<LoadConfigOptions, 'cwd'>): string {
  const xdg = envValue(env, 'XDG_DATA_HOME');
  // The XDG spec ignores relative values, so a stray relative one cannot make the data dir follow the cwd.
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'nanoclaw');
  if (isRoot) return ROOT_HOME_DIR;
  return path.join(userHome, '.local', 'share', 'nanoclaw');
}

/** The policy dir when NANOCLAW_CONFIG_DIR is unset: `$XDG_CONFIG_HOME/nanoclaw`, else `~/.config/nanoclaw`. */
export function defaultConfigDir({ env, userHome }: Omit<LoadConfigOptions, 'cwd'>): string {
  const xdg = envValue(env, 'XDG_CONFIG_HOME');
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'nanoclaw');
  return path.join(userHome, '.config', 'nanoclaw');
}

/** Defaults, then config.json, then the environment (which wins for the knobs it names). */
export function loadConfig({ env, cwd, userHome, isRoot = false }: LoadConfigOptions): Config {
  const explicitHome = envValue(env, 'NANOCLAW_HOME');
  const homeDir =
    explicitHome === undefined
      ? defaultHomeDir({ env, userHome, isRoot })
      : path.resolve(cwd, expandHome(explicitHome, userHome));
  const explicitConfig = envValue(env, 'NANOCLAW_CONFIG_DIR');
  const configDir =
    explicitConfig === undefined
      ? defaultConfigDir({ env, userHome })
      : path.resolve(cwd, expandHome(explicitConfig, userHome));
  // Sandboxes see parts of groups/ and data/: a policy dir in there would let an agent rewrite its own allowlists.
  for (const mounted of [path.join(homeDir, 'groups'), path.join(homeDir, 'data')]) {
    if (configDir === mounted || configDir.startsWith(`${mounted}${path.sep}`)) {
      throw new ConfigError(
        `the config dir ${configDir} is inside ${mounted}, parts of which sandboxes can see; ` +
          'move it out, e.g. NANOCLAW_CONFIG_DIR=~/.config/nanoclaw',
        { file: ENV_SOURCE, field: 'NANOCLAW_CONFIG_DIR' },
      );
    }
  }
  const configFile = path.join(configDir, CONFIG_FILE_NAME);

  const defaults = defaultKnobs();
  const fromFile = readConfigFile(configFile);
  const fromEnv = envKnobs(env);
  const { sandboxLimits: fileLimits, ...fileRest } = fromFile;
  const knobs: ConfigKnobs = {
    ...defaults,
    ...fileRest,
    ...(fileRest.upstreamBaseUrl === undefined
      ? {}
      : { upstreamBaseUrl: normaliseUrl(fileRest.upstreamBaseUrl) ?? fileRest.upstreamBaseUrl }),
    ...(fileRest.transcriberUrl === undefined
      ? {}
      : { transcriberUrl: normaliseUrl(fileRest.transcriberUrl) ?? fileRest.transcriberUrl }),
    ...fromEnv,
    sandboxLimits: { ...defaults.sandboxLimits, ...fileLimits },
  };

  if (knobs.outboxRetryBaseMs > knobs.outboxRetryMaxMs) {
    throw new ConfigError(
      `"outboxRetryMaxMs" (${knobs.outboxRetryMaxMs}) must be ≥ "outboxRetryBaseMs" (${knobs.outboxRetryBaseMs})`,
      { file: configFile, field: 'outboxRetryMaxMs' },
    );
  }

  const storeDir = path.join(homeDir, 'store');
  const dataDir = path.join(homeDir, 'data');
  const paths: ConfigPaths = Object.freeze({
    storeDir,
    dbPath: path.join(storeDir, 'nanoclaw.db'),
    authDir: path.join(storeDir, 'auth'),
    groupsDir: path.join(homeDir, 'groups'),
    dataDir,
    sessionsDir: path.join(dataDir, 'sessions'),
    runsDir: path.join(dataDir, 'runs'),
    logsDir: path.join(homeDir, 'logs'),
  });

  return Object.freeze({
    homeDir,
    configDir,
    ...knobs,
    sandboxLimits: Object.freeze({ ...knobs.sandboxLimits }),
    paths,
  });
}

/**
 * Creates the data root on first use. 0711: only the owner may list it, but the
 * sandbox user (uid 1000 under a root host) must pass through it to the group
 * folders bound into its sandbox; what is secret below it (store/, .env) keeps
 * its own owner-only modes.
 */
export function ensureHomeDir(homeDir: string): void {
  if (fs.existsSync(homeDir)) return;
  fs.mkdirSync(path.dirname(homeDir), { recursive: true, mode: 0o755 });
  try {
    fs.mkdirSync(homeDir, { mode: 0o711 });
  } catch (err) {
    // Created by a concurrent command: it is theirs to have set up.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  // The umask may have taken the execute bit that uid 1000 needs.
  fs.chmodSync(homeDir, 0o711);
}

/**
 * Older versions kept the data in the current directory; a database there that
 * is not the one in use is probably the owner's real data, left behind.
 */
export function legacyDataDir(cwd: string, homeDir: string): string | null {
  const dir = path.resolve(cwd);
  if (dir === path.resolve(homeDir)) return null;
  return fs.existsSync(path.join(dir, 'store', 'nanoclaw.db')) ? dir : null;
}

// ---- model credential -------------------------------------------------------

export type CredentialKind = 'api_key' | 'oauth';

export interface Credential {
  kind: CredentialKind;
  value: string;
  source: 'env' | '.env';
}

/** In order of preference within one source. */
const CREDENTIAL_KEYS: readonly { key: string; kind: CredentialKind }[] = [
  { key: 'ANTHROPIC_API_KEY', kind: 'api_key' },
  { key: 'CLAUDE_CODE_OAUTH_TOKEN', kind: 'oauth' },
];

/** Unquotes a .env value: double quotes allow escapes, single quotes are literal, bare values lose ` # comments`. */
function dotEnvValue(raw: string): string {
  const value = raw.trim();
  if (value.startsWith('"')) {
    const end = value.indexOf('"', 1);
    const body = end === -1 ? value.slice(1) : value.slice(1, end);
    return body.replace(/\\([nrt"\\])/g, (_m, ch: string) =>
      ch === 'n' ? '\n' : ch === 'r' ? '\r' : ch === 't' ? '\t' : ch,
    );
  }
  if (value.startsWith("'")) {
    const end = value.indexOf("'", 1);
    return end === -1 ? value.slice(1) : value.slice(1, end);
  }
  return value.replace(/\s+#.*$/, '').trim();
}

/** Reads only the wanted keys, so nothing else in the owner's .env is ever held in memory. */
function parseDotEnv(text: string, wanted: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (match === null || !wanted.includes(match[1])) continue;
    found.set(match[1], dotEnvValue(match[2]));
  }
  return found;
}

/**
 * A host-only key that is not the model credential: the environment first, else
 * `<homeDir>/.env` (trimmed). Undefined when neither has it or the file cannot be
 * read: the credential loader reports that file's problems.
 */
function hostKey(env: NodeJS.ProcessEnv, homeDir: string, name: string): string | undefined {
  const fromEnv = envValue(env, name);
  if (fromEnv !== undefined) return fromEnv;
  try {
    return parseDotEnv(readFileSync(path.join(homeDir, '.env'), 'utf8'), [name])
      .get(name)
      ?.trim();
  } catch {
    return undefined;
  }
}

/**
 * The OpenAI-compatible provider's key (OPENAI_API_KEY), from the environment or
 * `<homeDir>/.env`; empty when there is none, as a local server needs none.
 */
export function loadOpenAiKey({ env, homeDir }: { env: NodeJS.ProcessEnv; homeDir: string }): string {
  return hostKey(env, homeDir, 'OPENAI_API_KEY') ?? '';
}

/**
 * The model credential the broker injects: from the environment first, else from
 * `<homeDir>/.env`. Null when there is none. Never logs or echoes the value.
 */
export function loadCredential({
  env,
  homeDir,
}: {
  env: NodeJS.ProcessEnv;
  homeDir: string;
}): Credential | null {
  for (const { key, kind } of CREDENTIAL_KEYS) {
    const value = envValue(env, key);
    if (value !== undefined) return { kind, value, source: 'env' };
  }

  const file = path.join(homeDir, '.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new ConfigError(`cannot read the file: ${code ?? 'unknown error'}`, { file });
  }
  const values = parseDotEnv(
    text,
    CREDENTIAL_KEYS.map((c) => c.key),
  );
  for (const { key, kind } of CREDENTIAL_KEYS) {
    const value = values.get(key)?.trim();
    if (value !== undefined && value !== '') return { kind, value, source: '.env' };
  }
  return null;
}

/** Where the speech service's key is read from (host only: no sandbox ever sees it). */
const TRANSCRIBER_KEY_VAR = 'NANOCLAW_TRANSCRIBER_KEY';

/** The transcription service's key: the environment first, else `<homeDir>/.env`; null when unset (local servers need none). */
export function loadTranscriberKey({
  env,
  homeDir,
}: {
  env: NodeJS.ProcessEnv;
  homeDir: string;
}): string | null {
  const value = hostKey(env, homeDir, TRANSCRIBER_KEY_VAR);
  return value === undefined || value === '' ? null : value;
}
