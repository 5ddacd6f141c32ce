// A tiny promise wrapper over execFile for availability probes and orphan
// cleanup; injected into the container backends so tests can check argv
// without a container engine.

import { execFile } from 'node:child_process';

export interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

export type CommandRunner = (
  command: string,
  args: string[],
  opts: { timeoutMs: number; env: Record<string, string> },
) => Promise<CommandResult>;

export const execCommand: CommandRunner = (command, args, opts) =>
  new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: opts.timeoutMs, env: opts.env, encoding: 'utf8' },
      (err, stdout, stderr) => {
        resolve({ ok: !err, stdout: String(stdout), stderr: String(stderr || (err ? err.message : '')) });
      },
    );
  });

/** The non-secret parts of the host environment a container CLI needs to find its engine. */
export function engineEnv(hostEnv: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = { PATH: hostEnv.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  for (const n of ['HOME', ...names]) {
    const v = hostEnv[n];
    if (v !== undefined) env[n] = v;
  }
  return env;
}
