// Drives the built `nanoclaw` command as a child process, the way a user or a
// script would: one-shot runs, and an interactive `chat --json` session.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The checkout: the nearest folder up with a package.json (this file also runs compiled, from dist/). */
function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}
export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
export const CLI = path.join(REPO_ROOT, 'bin', 'nanoclaw.mjs');

/** Fails loudly when the build is missing: these tests exercise the shipped bundle. */
export function assertBuilt(): void {
  for (const file of ['dist/host/main.mjs', 'dist/runner.mjs', 'dist/runner-claude.mjs']) {
    if (!fs.existsSync(path.join(REPO_ROOT, file)))
      throw new Error(`${file} is missing: run npm run build first`);
  }
}

export interface CliHome {
  dir: string;
  env: NodeJS.ProcessEnv;
  writeConfig(config: object): void;
  cleanup(): void;
}

/** A fresh data root and policy dir, with a minimal environment (no host secrets). */
export function makeCliHome(extraEnv: NodeJS.ProcessEnv = {}): CliHome {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-cli-'));
  fs.chmodSync(dir, 0o755);
  const policy = path.join(dir, 'policy');
  fs.mkdirSync(policy);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    NANOCLAW_HOME: dir,
    NANOCLAW_CONFIG_DIR: policy,
    TZ: 'UTC',
    NANOCLAW_ENGINE: 'echo',
    ...extraEnv,
  };
  return {
    dir,
    env,
    writeConfig: (config) =>
      fs.writeFileSync(path.join(policy, 'config.json'), JSON.stringify(config, null, 2)),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  input = '',
  timeoutMs = 30_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, cwd: env.NANOCLAW_HOME });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nanoclaw ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

export interface ChatLine {
  chat: string;
  text: string;
}

/** An open `nanoclaw chat --json` session. */
export class ChatSession {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: ChatLine[] = [];
  /** Every output line as printed (files sent by the agent are `{"chat","file","caption"?}`). */
  readonly records: Array<Record<string, unknown>> = [];
  stderr = '';
  private readonly waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, 'chat', '--json'], { env, cwd: env.NANOCLAW_HOME });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      // The outbox id is left out: tests compare what the user sees (chat and text).
      const record = JSON.parse(line) as Record<string, unknown>;
      this.records.push(record);
      const { chat, text } = record as unknown as ChatLine;
      if (typeof text === 'string') this.lines.push({ chat, text });
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  send(message: { text: string; sender?: string; chat?: string } | string): void {
    this.child.stdin.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
  }

  async waitFor(predicate: (lines: ChatLine[]) => boolean, timeoutMs = 20_000): Promise<ChatLine[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.lines)) {
      if (Date.now() > deadline) {
        throw new Error(`chat output not as expected: ${JSON.stringify(this.lines)}\nstderr: ${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.lines;
  }

  /** Ends input; the command answers what is pending and exits. */
  async end(): Promise<number | null> {
    this.child.stdin.end();
    return this.exited;
  }
}
