// The `nanoclaw` command line: finds the subcommand in the command table and
// runs it — inside the running host when there is one and the command changes
// or reads its state (`viaHost`), so a change takes effect at once. `--help` anywhere prints that command's usage (exit 0); errors meant
// for the user are CliErrors (one clear line and an exit code); anything else
// is a bug and prints one line, with the stack only under LOG_LEVEL=debug.

import fs from 'node:fs';
import path from 'node:path';
import { GroupConflictError, StoreInputError, StoreOpenError, StoreVersionError } from '../store/errors.js';
import { closestName, wantsHelp } from './commands/args.js';
import { COMMANDS, type Command, type HostAccess } from './commands/index.js';
import { CliError, loadCliConfig } from './context.js';
import { onHostOrLocally, runInHost } from './control-client.js';
import { findPackageRoot } from './package-root.js';

export interface MainIo {
  print: (line: string) => void;
  errors: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Set when this runs inside the host, for its control socket. */
  host?: HostAccess;
}

const processIo: MainIo = {
  print: (line) => process.stdout.write(`${line}\n`),
  errors: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

function topLevelUsage(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'usage: nanoclaw <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    '  nanoclaw <command> --help   that command’s options',
    '  nanoclaw --version          the installed version',
  ].join('\n');
}

function packageVersion(): string {
  const root = findPackageRoot(import.meta.url);
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? 'unknown';
}

function helpFor(command: Command, args: string[]): string {
  const sub = args[0];
  return (sub !== undefined && command.subcommandUsage?.[sub]) || command.usage;
}

/** `commands` is the shipped table; tests pass their own to reach the error paths. */
export async function main(
  argv: string[],
  io: MainIo = processIo,
  commands: readonly Command[] = COMMANDS,
): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined) {
      io.errors(topLevelUsage(commands));
      return 2;
    }
    if (name === 'help' || name === '--help' || name === '-h') {
      const topic = commands.find((c) => c.name === rest[0]);
      io.print(topic ? helpFor(topic, rest.slice(1)) : topLevelUsage(commands));
      return 0;
    }
    if (name === '--version' || name === '-v' || name === 'version') {
      io.print(packageVersion());
      return 0;
    }
    const command = commands.find((c) => c.name === name);
    if (!command) {
      const guess = closestName(
        name,
        commands.map((c) => c.name),
      );
      io.errors(
        `nanoclaw: unknown command "${name}"${guess ? `; did you mean "nanoclaw ${guess}"?` : ''} (nanoclaw --help lists them)`,
      );
      return 2;
    }
    if (wantsHelp(rest)) {
      io.print(helpFor(command, rest));
      return 0;
    }
    if (io.host) {
      if (!command.viaHost) {
        io.errors(`nanoclaw: ${name} cannot run through the host's control socket`);
        return 2;
      }
      return await command.run(rest, { print: io.print, env: io.env, host: io.host });
    }
    if (!command.viaHost) return await command.run(rest, { print: io.print, env: io.env });
    return await runViaHost(command, argv, rest, io);
  } catch (err) {
    return reportError(err, io);
  }
}

/** Inside the running host if there is one; otherwise here, on the data dir under the host lock. */
async function runViaHost(command: Command, argv: string[], rest: string[], io: MainIo): Promise<number> {
  return onHostOrLocally(
    loadCliConfig(io.env).paths.dataDir,
    async (socket) => {
      const output = await runInHost(socket, argv);
      for (const line of output.lines) (line.stream === 'out' ? io.print : io.errors)(line.text);
      return output.exitCode;
    },
    () => command.run(rest, { print: io.print, env: io.env }),
  );
}

function reportError(err: unknown, io: MainIo): number {
  if (err instanceof CliError) {
    io.errors(err.message);
    return err.exitCode;
  }
  if (err instanceof StoreOpenError || err instanceof StoreInputError || err instanceof GroupConflictError) {
    io.errors(`nanoclaw: ${err.message}`);
    return 1;
  }
  if (err instanceof StoreVersionError) {
    io.errors(`nanoclaw: ${err.message}`);
    return 2;
  }
  // A bug, not the user's doing: one line; the stack only when asked for.
  const detail = err instanceof Error ? err.message : String(err);
  io.errors(
    `nanoclaw: internal error; see the log (LOG_LEVEL=debug prints the stack): ${detail.split('\n')[0]}`,
  );
  if (io.env.LOG_LEVEL === 'debug' && err instanceof Error && err.stack) io.errors(err.stack);
  return 1;
}
