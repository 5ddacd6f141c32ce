// What every CLI command needs first: the validated config and a logger. A
// config error is reported once, naming file, line and problem, and the
// command exits 2 — the host never starts on a corrupt file (SPEC §12). The data
// directory is created on first use, so a fresh install needs no setup step.

import os from 'node:os';
import pino from 'pino';
import { ConfigError, ensureHomeDir, legacyDataDir, loadConfig, type Config } from '../config/config.js';
import type { Logger } from '../core/logger.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function loadCliConfig(
  env: NodeJS.ProcessEnv = process.env,
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Config {
  let config: Config;
  try {
    config = loadConfig({
      env,
      cwd: process.cwd(),
      userHome: os.homedir(),
      isRoot: process.getuid?.() === 0,
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`nanoclaw: ${err.message}`, 2);
    throw err;
  }
  try {
    ensureHomeDir(config.homeDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new CliError(
      `nanoclaw: cannot create the data directory ${config.homeDir} (${code}); create it yourself or set NANOCLAW_HOME to a directory you can write`,
      2,
    );
  }
  // Before the fixed default the data dir was the current directory: say so rather than start afresh in silence.
  const legacy = legacyDataDir(process.cwd(), config.homeDir);
  if (legacy !== null) {
    warn(
      `nanoclaw: note: ${legacy} holds an older data dir, but the data dir is now ${config.homeDir}; set NANOCLAW_HOME=${legacy} to keep using it, or move it there (nanoclaw doctor says more)`,
    );
  }
  return config;
}

/** Logs of an interactive `chat`, which must not interleave with the conversation. */
export function makeFileLogger(level: string, file: string): Logger {
  return pino({ level, base: undefined }, pino.destination({ dest: file, mkdir: true, sync: false }));
}

/** Logs go to stderr so stdout stays clean for `chat --json`. */
export function makeLogger(level: string): Logger {
  return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: false }));
}

/** Who holds a data dir's host lock, as its pid file says (for messages only). */
export interface LockHolder {
  pid: number;
  startedAt: string;
}

/** The data dir's host lock is held: by a running host, one starting, or a command working on the data dir. */
export class HostLockedError extends CliError {
  constructor(
    readonly holder: LockHolder | null,
    dataDir: string,
    what: string,
  ) {
    const who = holder ? `pid ${holder.pid}` : 'pid unknown';
    const stop = holder ? `stop it first (kill ${holder.pid})` : 'stop it first';
    super(`nanoclaw: another nanoclaw host is running (${who}) on ${dataDir}; ${stop} ${what}`, 2);
  }
}
