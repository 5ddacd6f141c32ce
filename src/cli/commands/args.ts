// One wrapper around node's parseArgs for every subcommand: a malformed or
// unknown option becomes a one-line usage error (exit 2) naming the option and
// the command's --help, never a TypeError with a stack.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from '../context.js';

/** `command` is what the user typed after `nanoclaw`, e.g. `tasks add`. */
export function parseCommandArgs<T extends ParseArgsConfig>(
  command: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      throw usageError(command, firstSentence(err instanceof Error ? err.message : String(err)));
    }
    throw err;
  }
}

export function usageError(command: string, problem: string): CliError {
  return new CliError(`nanoclaw ${command}: ${problem}; try nanoclaw ${command} --help`, 2);
}

/** True when `--help` or `-h` appears before any `--`. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Node's messages go on with advice about `--` that does not fit on one line. */
function firstSentence(message: string): string {
  const line = message.split('\n')[0];
  const stop = line.indexOf('. ');
  return stop === -1 ? line.replace(/\.$/, '') : line.slice(0, stop);
}

/** Edit distance, for "did you mean …" on an unknown command. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The closest name, if it is close enough to be a plausible typo. */
export function closestName(input: string, names: readonly string[]): string | null {
  let best: { name: string; distance: number } | null = null;
  for (const name of names) {
    const distance = editDistance(input.toLowerCase(), name);
    if (best === null || distance < best.distance) best = { name, distance };
  }
  if (best === null) return null;
  return best.distance <= Math.max(2, Math.floor(best.name.length / 2)) ? best.name : null;
}
