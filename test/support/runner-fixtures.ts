// Test helpers for driving the bundled runner directly over stdio: build the
// bundle once, spawn it (optionally as an unprivileged uid), and wait for
// protocol lines.

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  encodeLine,
  parseRunnerLine,
  type HostToRunnerLine,
  type RunnerToHostLine,
  type StartLine,
} from '../../src/core/protocol.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RUNNER_BUNDLE = path.join(PROJECT_ROOT, 'dist/runner.mjs');

/** Builds dist/runner.mjs from the current sources. */
export function bundleRunner(): void {
  execFileSync(process.execPath, [path.join(PROJECT_ROOT, 'scripts/bundle-runner.mjs')], {
    stdio: 'inherit',
  });
}

/** The unprivileged user Claude Code needs (it refuses bypassPermissions as root). */
export const AGENT_UID = 1000;
export const AGENT_GID = 1000;

export interface AgentDirs {
  root: string;
  groupDir: string;
  globalDir: string;
  homeDir: string;
  socketDir: string;
}

/** Temp dirs laid out like a run's view, owned by `uid` so an unprivileged runner can write them. */
export function makeAgentDirs(uid?: number, gid?: number): AgentDirs {
  const root = mkdtempSync(path.join(tmpdir(), 'nanoclaw-runner-'));
  chmodSync(root, 0o755);
  const dirs = {
    root,
    groupDir: path.join(root, 'group'),
    globalDir: path.join(root, 'global'),
    homeDir: path.join(root, 'home'),
    socketDir: path.join(root, 'sock'),
  };
  for (const dir of [
    dirs.groupDir,
    dirs.globalDir,
    dirs.homeDir,
    path.join(dirs.homeDir, '.claude'),
    dirs.socketDir,
  ]) {
    mkdirSync(dir, { recursive: true });
    if (uid !== undefined) chownSync(dir, uid, gid ?? uid);
  }
  return dirs;
}

export function echoStart(dirs: AgentDirs, prompt: string, extra: Partial<StartLine> = {}): StartLine {
  return {
    type: 'start',
    runId: 'run-test',
    prompt,
    group: { folder: 'main', isMain: true, name: 'Main' },
    assistantName: 'Andy',
    engine: 'echo',
    paths: { groupDir: dirs.groupDir, globalDir: dirs.globalDir, homeDir: dirs.homeDir },
    ...extra,
  };
}

export interface RunnerHarness {
  child: ChildProcessWithoutNullStreams;
  lines: RunnerToHostLine[];
  /** Raw stdout lines that failed validation. */
  badLines: string[];
  stderr(): string;
  send(line: HostToRunnerLine): void;
  /** Resolves with the first received line (already received or future) matching the predicate. */
  waitFor<T extends RunnerToHostLine>(
    predicate: (line: RunnerToHostLine) => line is T,
    timeoutMs?: number,
  ): Promise<T>;
  waitFor(predicate: (line: RunnerToHostLine) => boolean, timeoutMs?: number): Promise<RunnerToHostLine>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnRunnerOptions {
  uid?: number;
  gid?: number;
  cwd?: string;
  env?: Record<string, string>;
}

export function spawnRunner(options: SpawnRunnerOptions = {}): RunnerHarness {
  const child = spawn(process.execPath, [RUNNER_BUNDLE], {
    stdio: ['pipe', 'pipe', 'pipe'],
    uid: options.uid,
    gid: options.gid,
    cwd: options.cwd,
    env: options.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  const lines: RunnerToHostLine[] = [];
  const badLines: string[] = [];
  const waiters: Array<{
    predicate: (line: RunnerToHostLine) => boolean;
    resolve: (l: RunnerToHostLine) => void;
  }> = [];
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const raw = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const parsed = parseRunnerLine(raw);
      if (!parsed.ok) {
        badLines.push(raw);
        continue;
      }
      lines.push(parsed.line);
      for (const w of [...waiters]) {
        if (w.predicate(parsed.line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed.line);
        }
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  child.stdin.on('error', () => undefined);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );

  const waitFor = (
    predicate: (line: RunnerToHostLine) => boolean,
    timeoutMs = 15_000,
  ): Promise<RunnerToHostLine> => {
    const seen = lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`timed out waiting for a runner line; got ${JSON.stringify(lines)}; stderr: ${stderr}`),
        );
      }, timeoutMs);
      waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };

  return {
    child,
    lines,
    badLines,
    stderr: () => stderr,
    send: (line) => child.stdin.write(encodeLine(line)),
    waitFor: waitFor as RunnerHarness['waitFor'],
    exit,
  };
}

export function isType<K extends RunnerToHostLine['type']>(type: K) {
  return (line: RunnerToHostLine): line is Extract<RunnerToHostLine, { type: K }> => line.type === type;
}
