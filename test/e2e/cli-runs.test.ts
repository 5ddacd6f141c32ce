// The owner's view of runs and registration through the shipped CLI: the real
// host, real SQLite and the real bwrap sandbox, with the runner's `echo` engine
// standing in for the model.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, makeCliHome, runCli, type CliHome } from '../support/cli.js';

let home: CliHome;
beforeAll(() => assertBuilt());
afterEach(() => home?.cleanup());

interface ChatOut {
  chat: string;
  text: string;
}

async function chat(lines: object[]): Promise<ChatOut[]> {
  const result = await runCli(
    ['chat', '--json'],
    home.env,
    lines.map((l) => `${JSON.stringify(l)}\n`).join(''),
  );
  expect(result.code, result.stderr).toBe(0);
  return result.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ChatOut);
}

async function cli(args: string[]): Promise<string> {
  const result = await runCli(args, home.env);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

describe('re-registering a chat', () => {
  it('does not replay its history: after groups remove + add only the new message is answered', async () => {
    home = makeCliHome();
    const add = [
      'groups',
      'add',
      'local:family',
      '--name',
      'Family',
      '--folder',
      'family',
      '--trigger',
      '@Andy',
    ];
    await cli(add);
    const first = await chat([
      { text: '@Andy old question', sender: 'bob', chat: 'local:family' },
      { text: 'chatter after it', sender: 'bob', chat: 'local:family' },
    ]);
    expect(first.map((l) => l.text)).toEqual(['echo: @Andy old question']);

    await cli(['groups', 'remove', 'local:family']);
    await cli(add);
    const second = await chat([{ text: '@Andy new question', sender: 'bob', chat: 'local:family' }]);
    expect(second).toHaveLength(1);
    expect(second[0].chat).toBe('local:family');
    expect(second[0].text).toContain('new question');
    expect(second[0].text).not.toContain('old question');
    expect(second[0].text).not.toContain('chatter after it');
  });
});

describe('nanoclaw runs', () => {
  it('lists an answered run as ok and a refused one as refused with its reason', async () => {
    home = makeCliHome();
    expect(await cli(['runs'])).toContain('no runs recorded');
    expect((await chat([{ text: 'hello' }])).map((l) => l.text)).toEqual(['echo: hello']);
    const afterOk = (await cli(['runs', '--json']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(afterOk).toEqual([
      expect.objectContaining({ group: 'main', kind: 'messages', taskId: null, outcome: 'ok', error: null }),
    ]);
    expect(afterOk[0].durationMs).toBeGreaterThanOrEqual(0);

    await cli(['groups', 'budget', 'local:main', '0']);
    const refusedChat = await chat([{ text: 'and again' }]);
    expect(refusedChat.map((l) => l.text).join('\n')).toMatch(/budget/);
    const runs = (await cli(['runs', '--json', '--group', 'main']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(runs).toHaveLength(2);
    expect(runs[0]).toMatchObject({ group: 'main', outcome: 'refused' });
    expect(runs[0].error).toMatch(/daily token budget/);
    expect(runs[1]).toMatchObject({ outcome: 'ok' });

    const table = (await cli(['runs', '--limit', '1'])).trim().split('\n');
    expect(table[0]).toMatch(/^started +duration +group +kind +outcome +tokens in\/out +error$/);
    expect(table).toHaveLength(2);
    expect(table[1]).toMatch(/ main +messages +refused +0\/0 +.*budget/);
  });

  it('prints its help, and refuses a wrong option with a one-line reason and exit 2', async () => {
    home = makeCliHome();
    const help = await runCli(['runs', '--help'], home.env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: nanoclaw runs \[--group FOLDER\]/);
    const bad = await runCli(['runs', '--bogus'], home.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--bogus'");
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const badLimit = await runCli(['runs', '--limit', 'lots'], home.env);
    expect(badLimit.code).toBe(2);
    expect(badLimit.stderr).toMatch(/--limit "lots" must be a whole number >= 1, e\.g\. --limit 20/);
  });
});
