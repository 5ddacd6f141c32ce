// The command line as a user meets it, through the shipped `nanoclaw` binary:
// every command and subcommand explains itself with --help, a wrong option is a
// one-line usage error (exit 2) and never a stack trace, and the task commands
// follow the task state machine with the agent's own schedule checks.
import path from 'node:path';
import fs from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/store.js';
import { assertBuilt, makeCliHome, REPO_ROOT, runCli, type CliHome } from '../support/cli.js';

let home: CliHome;
beforeAll(() => assertBuilt());
afterEach(() => home?.cleanup());

const SUBCOMMANDS: Record<string, string[]> = {
  groups: ['list', 'add', 'add-main', 'remove', 'budget', 'edit'],
  tasks: ['list', 'add', 'pause', 'resume', 'cancel'],
  service: ['install', 'uninstall', 'status'],
};
const STACK_LINE = /\n\s+at /;
const SLOW_MS = 120_000;

/** The command names the top-level help lists: `  name  summary` lines. */
async function listedCommands(): Promise<string[]> {
  const help = await runCli(['--help'], home.env);
  expect(help.code).toBe(0);
  return [...help.stdout.matchAll(/^ {2}([a-z][a-z-]*) {2,}\S/gm)].map((m) => m[1]);
}

function expectUsageError(result: { code: number | null; stderr: string }, ...mentions: string[]): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
  expect(result.stderr).not.toMatch(STACK_LINE);
  for (const text of mentions) expect(result.stderr).toContain(text);
}

async function cli(args: string[]): Promise<string> {
  const result = await runCli(args, home.env);
  expect(result.code, `nanoclaw ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

function withStore<T>(fn: (store: ReturnType<typeof openStore>) => T): T {
  const store = openStore(path.join(home.dir, 'store', 'nanoclaw.db'));
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

describe('nanoclaw help and usage errors', () => {
  it(
    'answers --help and -h for every command and subcommand with its own usage, exit 0',
    async () => {
      home = makeCliHome();
      const commands = await listedCommands();
      expect(commands).toEqual(
        expect.arrayContaining(['start', 'chat', 'doctor', 'auth', 'groups', 'tasks']),
      );
      expect(commands).toEqual(expect.arrayContaining(['audit', 'usage', 'runs']));
      const cases = commands.flatMap((c) => [
        [c, '--help'],
        [c, '-h'],
        ['help', c],
      ]);
      for (const [command, subs] of Object.entries(SUBCOMMANDS)) {
        for (const sub of subs) cases.push([command, sub, '--help']);
      }
      for (const args of cases) {
        const result = await runCli(args, home.env);
        const shown = args.filter((a) => !a.startsWith('-') && a !== 'help').join(' ');
        expect(result.code, `nanoclaw ${args.join(' ')}: ${result.stderr}`).toBe(0);
        expect(result.stdout, `nanoclaw ${args.join(' ')}`).toMatch(
          new RegExp(`^usage: nanoclaw ${shown}\\b`),
        );
      }
    },
    SLOW_MS,
  );

  it(
    'refuses an unknown option of every command in one line naming it and its --help, exit 2',
    async () => {
      home = makeCliHome();
      for (const command of await listedCommands()) {
        const result = await runCli([command, '--no-such-option'], home.env);
        expectUsageError(result, '--no-such-option', `try nanoclaw ${command} --help`);
      }
      for (const [command, subs] of Object.entries(SUBCOMMANDS)) {
        for (const sub of subs.filter((s) => s !== 'add-main')) {
          const result = await runCli([command, sub, '--no-such-option'], home.env);
          expectUsageError(result, '--no-such-option', `try nanoclaw ${command} ${sub} --help`);
        }
      }
    },
    SLOW_MS,
  );

  it('refuses an option missing its value or given one it does not take, exit 2', async () => {
    home = makeCliHome();
    const cases: Array<[string[], string]> = [
      [['audit', '--since'], 'audit'],
      [['usage', '--since'], 'usage'],
      [['runs', '--limit'], 'runs'],
      [['tasks', 'list', '--group'], 'tasks list'],
      [['groups', 'list', '--group'], 'groups list'],
      [['chat', '--json=yes'], 'chat'],
      [['auth', 'whatsapp', '--phone'], 'auth'],
    ];
    for (const [args, command] of cases) {
      expectUsageError(
        await runCli(args, home.env),
        `nanoclaw ${command}:`,
        `try nanoclaw ${command} --help`,
      );
    }
    expectUsageError(await runCli(['audit', '--limit', 'many'], home.env), '--limit "many"');
  });

  it('prints the package version, suggests the closest command, and lists commands with no arguments', async () => {
    home = makeCliHome();
    const { version } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect((await cli(['--version'])).trim()).toBe(version);
    const typo = await runCli(['taks', 'list'], home.env);
    expectUsageError(typo, 'unknown command "taks"', 'did you mean "nanoclaw tasks"');
    const nonsense = await runCli(['xyzzyplugh'], home.env);
    expectUsageError(nonsense, 'unknown command "xyzzyplugh"', 'nanoclaw --help');
    expect(nonsense.stderr).not.toContain('did you mean');
    const bare = await runCli([], home.env);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^usage: nanoclaw <command>/);
    expect(bare.stderr).toMatch(/^ {2}tasks {2,}\S/m);
  });
});

describe('nanoclaw tasks and groups', () => {
  async function addFamily(): Promise<void> {
    await cli(['groups', 'add', 'local:family', '--name', 'Family', '--folder', 'family', '--no-trigger']);
  }

  async function addTask(...schedule: string[]): Promise<string> {
    const out = await cli(['tasks', 'add', '--group', 'family', '--prompt', 'water the plants', ...schedule]);
    const id = /^scheduled (task-[0-9a-f]+) in family; first run \S+/.exec(out)?.[1];
    expect(id, out).toBeDefined();
    return id ?? '';
  }

  it('refuses to pause or resume a completed task and says to schedule a new one', async () => {
    home = makeCliHome();
    await addFamily();
    const id = await addTask('--at', new Date(Date.now() + 3_600_000).toISOString());
    withStore((store) => store.updateTask(id, { status: 'completed', nextRunAt: null }));
    for (const step of ['pause', 'resume']) {
      const result = await runCli(['tasks', step, id], home.env);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `task ${id} is completed and cannot be ${step}d; schedule a new one with nanoclaw tasks add\n`,
      );
    }
    expect(withStore((store) => store.getTask(id)?.status)).toBe('completed');
    const missing = await runCli(['tasks', 'resume', 'task-000000000000'], home.env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('no task task-000000000000; see nanoclaw tasks list\n');
  });

  it('resumes a paused cron task at its next slot from now, not its stale time', async () => {
    home = makeCliHome();
    await addFamily();
    const id = await addTask('--cron', '0 9 * * *');
    expect(await cli(['tasks', 'pause', id])).toBe(`paused ${id}\n`);
    const stale = Date.parse('2026-01-05T09:00:00Z');
    withStore((store) => store.updateTask(id, { nextRunAt: stale }));
    const before = Date.now();
    const out = await cli(['tasks', 'resume', id]);
    const after = Date.now();
    // The next 09:00 UTC after the moment of resuming (the home's time zone is UTC).
    const next09 = (ms: number) => {
      const day = new Date(ms);
      const slot = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), 9);
      return slot > ms ? slot : slot + 86_400_000;
    };
    const expected = new Set([next09(before), next09(after)].map((ms) => new Date(ms).toISOString()));
    const shown = /^resumed \S+; next run (\S+)\n$/.exec(out)?.[1] ?? out;
    expect(expected).toContain(shown);
    expect(withStore((store) => store.getTask(id))).toMatchObject({
      status: 'active',
      nextRunAt: Date.parse(shown),
    });
  });

  it('refuses a bad tasks add naming the flag with an example, and applies the task cap', async () => {
    home = makeCliHome();
    home.writeConfig({ maxActiveTasksPerGroup: 1 });
    await addFamily();
    const base = ['tasks', 'add', '--group', 'family', '--prompt', 'p'];
    const cases: Array<[string[], RegExp]> = [
      [
        [...base, '--every', '5s'],
        /--every "5s" is shorter than the minimum interval of 60s, e\.g\. --every 60m/,
      ],
      [[...base, '--every', 'soon'], /--every "soon" is not a duration, e\.g\. --every 60m/],
      [
        [...base, '--cron', 'daily'],
        /--cron "daily" is not a valid cron expression .*e\.g\. "0 9 \* \* 1-5"/,
      ],
      [[...base, '--at', '2020-01-01T09:00'], /--at "2020-01-01T09:00" is in the past .*e\.g\. "2030/],
      [[...base, '--at', 'tomorrow'], /--at "tomorrow" is not an ISO timestamp, e\.g\./],
      [[...base, '--cron', '0 9 * * *', '--every', '1h'], /give exactly one of --cron, --every or --at/],
      [[...base], /give exactly one of --cron, --every or --at.*e\.g\. --cron "0 9 \* \* 1-5"/],
      [['tasks', 'add', '--group', 'family', '--every', '1h'], /--prompt is required, e\.g\. --prompt "/],
      [
        [...base, '--every', '1h', '--context', 'shared'],
        /--context "shared" must be group or isolated, e\.g\./,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, home.env);
      expectUsageError(result, 'try nanoclaw tasks add --help');
      expect(result.stderr).toMatch(message);
    }
    const unknownGroup = await runCli(
      ['tasks', 'add', '--group', 'nope', '--prompt', 'p', '--every', '1h'],
      home.env,
    );
    expect(unknownGroup.code).toBe(1);
    expect(unknownGroup.stderr).toContain('no registered group has folder "nope"; see nanoclaw groups list');
    expect(await cli(['tasks', 'list'])).toBe('no tasks\n');

    await addTask('--every', '1h', '--context', 'isolated');
    const capped = await runCli([...base, '--every', '2h'], home.env);
    expect(capped.code).toBe(1);
    expect(capped.stderr).toBe(
      'group "family" already has 1 scheduled tasks, the maximum (1); cancel one before scheduling another\n',
    );
  });

  it('lists tasks and groups as JSON lines or as a table with a header, filtered by --group', async () => {
    home = makeCliHome();
    await addFamily();
    await cli(['groups', 'add', 'local:work', '--name', 'Work', '--folder', 'work', '--no-trigger']);
    const id = await addTask('--every', '90m');
    await cli(['tasks', 'add', '--group', 'work', '--prompt', 'standup', '--cron', '0 9 * * 1-5']);

    const tasks = (await cli(['tasks', 'list', '--json', '--group', 'family']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(tasks).toEqual([
      expect.objectContaining({
        id,
        groupFolder: 'family',
        scheduleType: 'interval',
        scheduleValue: '5400000',
      }),
    ]);
    expect(Date.parse(String(tasks[0].nextRunAt))).toBeGreaterThan(Date.now());
    const taskTable = (await cli(['tasks', 'list'])).trim().split('\n');
    expect(taskTable[0]).toMatch(/^id +group +status +schedule +next run +prompt$/);
    expect(taskTable).toHaveLength(3);

    const groups = (await cli(['groups', 'list', '--json', '--group', 'work']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(groups).toEqual([expect.objectContaining({ jid: 'local:work', folder: 'work', name: 'Work' })]);
    const groupTable = (await cli(['groups', 'list'])).trim().split('\n');
    expect(groupTable[0]).toMatch(/^jid +folder +wakes on +name +budget +senders +timeout +engine +mounts$/);
    expect(groupTable.slice(1).map((l) => l.split(/ {2,}/)[1])).toEqual(['family', 'work']);
    expect(await cli(['tasks', 'list', '--json', '--group', 'none'])).toBe('');
  });
});
