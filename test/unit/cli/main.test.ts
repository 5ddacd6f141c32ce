// main() without a process: a bug in a command prints one line (the stack only
// under LOG_LEVEL=debug), usage errors from the shared parseArgs wrapper exit 2,
// and the did-you-mean suggestion comes from the command table.
import { describe, expect, it } from 'vitest';
import { closestName, parseCommandArgs, wantsHelp } from '../../../src/cli/commands/args.js';
import type { Command } from '../../../src/cli/commands/index.js';
import { main, type MainIo } from '../../../src/cli/main.js';

function captureIo(env: NodeJS.ProcessEnv = {}): MainIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, env, print: (l) => out.push(l), errors: (l) => err.push(l) };
}

const commands: Command[] = [
  {
    name: 'crash',
    summary: 'a command with a bug',
    usage: 'usage: nanoclaw crash',
    run: () => {
      const missing = undefined as unknown as { field: string };
      return Promise.resolve(missing.field.length);
    },
  },
  {
    name: 'count',
    summary: 'takes --times N',
    usage: 'usage: nanoclaw count [--times N]',
    run: (args, io) => {
      const { values } = parseCommandArgs('count', { args, options: { times: { type: 'string' } } });
      io.print(`times ${values.times ?? '1'}`);
      return Promise.resolve(0);
    },
  },
];

describe('main', () => {
  it('reports a bug as one internal-error line, with the stack only under LOG_LEVEL=debug', async () => {
    const quiet = captureIo();
    expect(await main(['crash'], quiet, commands)).toBe(1);
    expect(quiet.err).toHaveLength(1);
    expect(quiet.err[0]).toMatch(/^nanoclaw: internal error; see the log/);
    expect(quiet.err.join('\n')).not.toMatch(/\n\s+at /);
    const debug = captureIo({ LOG_LEVEL: 'debug' });
    expect(await main(['crash'], debug, commands)).toBe(1);
    expect(debug.err.join('\n')).toMatch(/\n\s+at /);
  });

  it('turns a parseArgs error into a one-line usage error, exit 2, and --help into the usage, exit 0', async () => {
    const bad = captureIo();
    expect(await main(['count', '--times'], bad, commands)).toBe(2);
    expect(bad.err).toEqual([
      "nanoclaw count: Option '--times <value>' argument missing; try nanoclaw count --help",
    ]);
    const help = captureIo();
    expect(await main(['count', '--times', '3', '-h'], help, commands)).toBe(0);
    expect(help.out).toEqual(['usage: nanoclaw count [--times N]']);
    const top = captureIo();
    expect(await main(['--help'], top, commands)).toBe(0);
    expect(top.out.join('\n')).toMatch(/^ {2}count {2,}takes --times N$/m);
  });

  it('suggests the closest command only for a plausible typo', async () => {
    const typo = captureIo();
    expect(await main(['cuont'], typo, commands)).toBe(2);
    expect(typo.err[0]).toContain('did you mean "nanoclaw count"');
    expect(closestName('grops', ['groups', 'tasks'])).toBe('groups');
    expect(closestName('backupify-everything', ['groups', 'tasks'])).toBeNull();
    expect(wantsHelp(['add', '--', '--help'])).toBe(false);
    expect(wantsHelp(['add', '-h'])).toBe(true);
  });
});
