// What every CLI command needs first: the validated config and a logger. A
// config error is reported once, naming file, line and problem, and the
// command exits 2 — the host never starts on a corrupt file (SPEC §12).

import os from 'node:os';
import pino from 'pino';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import type { Logger } from '../core/logger.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig({ env, cwd: process.cwd(), userHome: os.homedir() });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`nanoclaw: ${err.message}`, 2);
    throw err;
  }
}

/** Logs of an interactive `chat`, which must not interleave with the conversation. */
export function makeFileLogger(level: string, file: string): Logger {
  return pino({ level, base: undefined }, pino.destination({ dest: file, mkdir: true, sync: false }));
}

/** Logs go to stderr so stdout stays clean for `chat --json`. */
export function makeLogger(level: string): Logger {
  return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: false }));
}
