// Group administration through main() with a real data root and real SQLite:
// groups add/edit take --mount (judged at once by the sandbox's mount policy),
// --trigger, --no-trigger and --timeout; chats list finds a chat's id; every
// human table starts with a header; malformed values exit 2, refusals exit 1
// and save nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main, type MainIo } from '../../../src/cli/main.js';
import { openStore } from '../../../src/store/store.js';
import type { StoreApi } from '../../../src/store/api.js';

interface Run {
  code: number;
  out: string[];
  err: string[];
}

let dir: string;
let policyDir: string;
let env: NodeJS.ProcessEnv;
/** Directories the allowlist may name; `secret` holds a path with a blocked pattern. */
let projects: string;
let shared: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-admin-'));
  policyDir = path.join(dir, 'policy');
  fs.mkdirSync(policyDir);
  projects = path.join(dir, 'projects');
  shared = path.join(dir, 'shared');
  for (const d of ['webapp', 'docs', '.ssh']) fs.mkdirSync(path.join(projects, d), { recursive: true });
  fs.mkdirSync(path.join(shared, 'inbox'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'elsewhere'));
  env = { NANOCLAW_HOME: dir, NANOCLAW_CONFIG_DIR: policyDir, TZ: 'UTC', NANOCLAW_ENGINE: 'echo' };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io: MainIo = { env, print: (l) => out.push(l), errors: (l) => err.push(l) };
  const code = await main(argv, io);
  return { code, out, err };
}

async function ok(...argv: string[]): Promise<string[]> {
  const r = await cli(...argv);
  expect(r.err, `nanoclaw ${argv.join(' ')}`).toEqual([]);
  expect(r.code).toBe(0);
  return r.out;
}

function writeAllowlist(): void {
  fs.writeFileSync(
    path.join(policyDir, 'mount-allowlist.json'),
    JSON.stringify({
      allowedRoots: [
        { path: projects, allowReadWrite: false },
        { path: shared, allowReadWrite: true },
      ],
    }),
  );
}

function withStore<T>(fn: (store: StoreApi) => T): T {
  const store = openStore(path.join(dir, 'store', 'nanoclaw.db'));
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

async function groupJson(folder: string): Promise<Record<string, unknown>> {
  const lines = await ok('groups', 'list', '--json', '--group', folder);
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as Record<string, unknown>;
}

/** Column starts of a header line, to check that rows line up under it. */
function columnStarts(header: string, names: string[]): number[] {
  return names.map((n) => header.indexOf(n));
}

describe('groups add options', () => {
  it('stores mounts (read-only unless :rw), --no-trigger and --timeout, and lists them', async () => {
    writeAllowlist();
    const added = await ok(
      'groups',
      'add',
      'local:dev',
      '--name',
      'Dev',
      '--folder',
      'dev',
      '--no-trigger',
      '--mount',
      `${projects}/webapp:webapp`,
      '--mount',
      `${shared}/inbox:inbox:rw`,
      '--timeout',
      '10m',
    );
    expect(added[0]).toBe('registered local:dev as dev');
    // Non-main groups get read-only mounts by default (nonMainReadOnly): the owner is told.
    expect(added.slice(1)).toEqual([
      expect.stringMatching(/^note: --mount .*inbox:inbox:rw will be read-only/),
    ]);
    expect(await groupJson('dev')).toMatchObject({
      requiresTrigger: false,
      containerConfig: {
        runTimeoutMs: 600_000,
        additionalMounts: [
          { hostPath: `${projects}/webapp`, containerPath: 'webapp', readonly: true },
          { hostPath: `${shared}/inbox`, containerPath: 'inbox', readonly: false },
        ],
      },
    });

    await ok('groups', 'add', 'local:family', '--name', 'Family', '--folder', 'family', '--trigger', '@Bob');
    const table = await ok('groups', 'list');
    const header = table[0];
    expect(header).toMatch(/^jid +folder +wakes on +name +budget +senders +timeout +engine +mounts$/);
    const starts = columnStarts(header, ['folder', 'wakes on', 'name', 'budget']);
    const dev = table.find((l) => l.startsWith('local:dev'))!;
    const family = table.find((l) => l.startsWith('local:family'))!;
    for (const row of [dev, family]) {
      expect(starts.map((s) => row[s - 1] === ' ' && row[s] !== ' ')).toEqual([true, true, true, true]);
    }
    expect(dev).toContain('every message');
    expect(dev).toMatch(/ 10m +default +\S+$/);
    expect(dev).toContain(`${projects}/webapp:webapp:ro,${shared}/inbox:inbox:rw`);
    expect(family).toContain('trigger @Bob');
    expect(family).toMatch(/default {2}-$/);
  });

  it('refuses a mount outside the allowed roots with one line, exit 1, saving nothing, and audits it', async () => {
    writeAllowlist();
    const outside = `${dir}/elsewhere`;
    const r = await cli('groups', 'add', 'local:dev', '--name', 'Dev', '--folder', 'dev', '--mount', outside);
    expect(r.code).toBe(1);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(
      new RegExp(
        `^nanoclaw groups add: mount refused: --mount ${outside} is not under an allowed root \\(allowed: `,
      ),
    );
    expect(r.err[0]).toContain('e.g. --mount ~/projects/webapp:webapp');
    expect(await ok('groups', 'list', '--json')).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'groups', 'dev'))).toBe(false);
    expect(withStore((s) => s.listAudit())).toEqual([
      expect.objectContaining({
        group: 'dev',
        action: 'mount',
        reason: 'outside_allowed_roots',
        target: outside,
      }),
    ]);
  });

  it('names each refusal reason: secrets, missing path, :rw on a read-only root, no allowlist', async () => {
    const add = (mount: string) =>
      cli('groups', 'add', 'local:dev', '--name', 'Dev', '--folder', 'dev', '--mount', mount);
    const none = await add(`${projects}/webapp`);
    expect(none.code).toBe(1);
    expect(none.err[0]).toMatch(
      /^nanoclaw groups add: mount refused: --mount \S+webapp: no mount allowlist exists/,
    );
    expect(none.err[0]).toContain(path.join(policyDir, 'mount-allowlist.json'));

    writeAllowlist();
    const secret = await add(`${projects}/.ssh`);
    expect(secret.err[0]).toMatch(/--mount .*\.ssh is refused: it contains "\.ssh", which may hold secrets/);
    const missing = await add(`${projects}/nope`);
    expect(missing.err[0]).toMatch(/--mount .*nope does not exist on the host/);
    const readOnlyRoot = await add(`${projects}/webapp:web:rw`);
    expect(readOnlyRoot.err[0]).toMatch(
      /--mount \S+webapp:web:rw asks for :rw but its allowed root is read-only; drop :rw/,
    );
    const badName = await add(`${projects}/webapp:../up`);
    expect(badName.err[0]).toMatch(/the container name must be relative/);
    for (const r of [secret, missing, readOnlyRoot, badName]) {
      expect(r.code).toBe(1);
      expect(r.err).toHaveLength(1);
    }
    expect(await ok('groups', 'list', '--json')).toEqual([]);
  });

  it('gives a one-line usage error (exit 2) for malformed --mount and --timeout values', async () => {
    writeAllowlist();
    const cases: Array<[string[], RegExp]> = [
      [['--mount', 'a:b:c:d'], /--mount "a:b:c:d" must be host:container\[:rw\]/],
      [['--mount', ':x'], /--mount ":x" must be host:container/],
      [['--timeout', '10'], /--timeout "10" must be a duration with a unit/],
      [['--timeout', '5s'], /--timeout "5s" must be between 10s and 24h/],
      [['--timeout', '2d'], /--timeout "2d" must be a duration with a unit/],
      [['--trigger', '@Andy Bot'], /trigger "@Andy Bot" is invalid/],
    ];
    for (const [extra, message] of cases) {
      const r = await cli('groups', 'add', 'local:dev', '--name', 'Dev', '--folder', 'dev', ...extra);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.err).toHaveLength(1);
      expect(r.err[0]).toMatch(message);
    }
    expect(await ok('groups', 'list', '--json')).toEqual([]);
  });
});

describe('groups edit', () => {
  beforeEach(async () => {
    writeAllowlist();
    await ok('groups', 'add', 'local:dev', '--name', 'Dev', '--folder', 'dev', '--mount', `${projects}/docs`);
  });

  it('changes only what is given', async () => {
    const before = await groupJson('dev');
    const out = await ok('groups', 'edit', 'local:dev', '--timeout', '600s');
    expect(out).toEqual([
      `local:dev: wakes on trigger @Andy; timeout 10m; engine default; mounts ${projects}/docs:docs:ro`,
    ]);
    const timed = await groupJson('dev');
    expect(timed).toEqual({
      ...before,
      containerConfig: { ...(before.containerConfig as object), runTimeoutMs: 600_000 },
    });

    await ok('groups', 'edit', 'local:dev', '--no-trigger');
    expect(await groupJson('dev')).toMatchObject({ trigger: '@Andy', requiresTrigger: false });
    await ok('groups', 'edit', 'local:dev', '--trigger', '@Bob');
    expect(await groupJson('dev')).toMatchObject({ trigger: '@Bob', requiresTrigger: true });

    await ok(
      'groups',
      'edit',
      'local:dev',
      '--mount',
      `${shared}/inbox:box:rw`,
      '--mount',
      `${projects}/webapp`,
    );
    expect((await groupJson('dev')).containerConfig).toEqual({
      runTimeoutMs: 600_000,
      additionalMounts: [
        { hostPath: `${shared}/inbox`, containerPath: 'box', readonly: false },
        { hostPath: `${projects}/webapp`, readonly: true },
      ],
    });
    await ok('groups', 'edit', 'local:dev', '--no-mounts', '--timeout', 'default', '--allow', 'local:alice');
    expect(await groupJson('dev')).toMatchObject({
      containerConfig: {},
      allowedSenders: ['local:alice'],
      trigger: '@Bob',
      requiresTrigger: true,
    });
  });

  it('--engine picks the agent engine of the group; default clears it; anything else is refused', async () => {
    expect(await ok('groups', 'edit', 'local:dev', '--engine', 'lite')).toEqual([
      `local:dev: wakes on trigger @Andy; timeout default; engine lite; mounts ${projects}/docs:docs:ro`,
    ]);
    expect((await groupJson('dev')).containerConfig).toMatchObject({ engine: 'lite' });
    const dev = (await ok('groups', 'list')).find((l) => l.startsWith('local:dev'));
    expect(dev).toMatch(/ default +lite +\//);
    const bad = await cli('groups', 'edit', 'local:dev', '--engine', 'echo');
    expect(bad.code).toBe(2);
    expect(bad.err.join('\n')).toMatch(
      /--engine "echo" must be one of lite, claude-code, default, e\.g\. --engine lite/,
    );
    await ok('groups', 'edit', 'local:dev', '--engine', 'default');
    expect((await groupJson('dev')).containerConfig).not.toHaveProperty('engine');
    await ok('groups', 'add', 'local:fam', '--name', 'Fam', '--folder', 'fam', '--engine', 'claude-code');
    expect((await groupJson('fam')).containerConfig).toEqual({ engine: 'claude-code' });
  });

  it('a refused mount saves nothing, not even the other changes', async () => {
    const before = await groupJson('dev');
    const r = await cli('groups', 'edit', 'local:dev', '--timeout', '20m', '--mount', `${dir}/elsewhere`);
    expect(r.code).toBe(1);
    expect(r.err).toEqual([
      expect.stringMatching(/^nanoclaw groups edit: mount refused: .*not under an allowed root/),
    ]);
    expect(await groupJson('dev')).toEqual(before);
  });

  it('refuses conflicting or missing options with exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['local:dev'], /nothing to change/],
      [['local:dev', '--mount', `${projects}/webapp`, '--no-mounts'], /either --mount or --no-mounts/],
      [['local:dev', '--timeout', 'soon'], /--timeout "soon"/],
      [['local:dev', '--allow', 'x', '--allow-everyone'], /either --allow or --allow-everyone/],
    ];
    for (const [args, message] of cases) {
      const r = await cli('groups', 'edit', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toEqual([expect.stringMatching(message)]);
    }
    const unknown = await cli('groups', 'edit', 'local:nobody', '--no-trigger');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toEqual(['no registered group local:nobody; see: nanoclaw groups list']);
  });
});

describe('chats list', () => {
  beforeEach(() => {
    withStore((store) => {
      store.upsertChat({
        jid: '120363000000000001@g.us',
        name: 'Family',
        channel: 'whatsapp',
        timestamp: '2026-01-02T10:00:00.000Z',
      });
      store.upsertChat({ jid: 'local:main', channel: 'local', timestamp: '2026-01-03T10:00:00.000Z' });
      store.upsertChat({
        jid: '491701234567@s.whatsapp.net',
        name: 'Alice',
        channel: 'whatsapp',
        timestamp: '2026-01-01T10:00:00.000Z',
      });
    });
  });

  it('shows chats newest first under a header, with the folder of registered ones', async () => {
    await ok('groups', 'add', 'local:main', '--name', 'Main', '--folder', 'main', '--main');
    const table = await ok('chats', 'list');
    expect(table[0]).toMatch(/^jid +name +channel +last activity +folder$/);
    expect(table.slice(1).map((l) => l.split(/ {2,}/))).toEqual([
      ['local:main', 'Main', 'local', '2026-01-03T10:00:00.000Z', 'main'],
      ['120363000000000001@g.us', 'Family', 'whatsapp', '2026-01-02T10:00:00.000Z', '-'],
      ['491701234567@s.whatsapp.net', 'Alice', 'whatsapp', '2026-01-01T10:00:00.000Z', '-'],
    ]);
    const nameColumn = table[0].indexOf('name');
    expect(table.slice(1).map((l) => l.slice(nameColumn, nameColumn + 4))).toEqual(['Main', 'Fami', 'Alic']);
  });

  it('filters by --channel, caps with --limit and prints JSON lines without a header', async () => {
    expect((await ok('chats', 'list', '--channel', 'whatsapp', '--limit', '1')).slice(1)).toEqual([
      expect.stringMatching(/^120363000000000001@g\.us +Family +whatsapp/),
    ]);
    const json = (await ok('chats', 'list', '--json', '--channel', 'local')).map(
      (l) => JSON.parse(l) as unknown,
    );
    expect(json).toEqual([
      {
        jid: 'local:main',
        name: null,
        channel: 'local',
        lastActivity: '2026-01-03T10:00:00.000Z',
        registered: null,
      },
    ]);
    expect(await ok('chats')).toHaveLength(4);
  });

  it('refuses a bad --channel or --limit with exit 2 and documents its options', async () => {
    const bad = await cli('chats', 'list', '--channel', 'telegram');
    expect(bad.code).toBe(2);
    expect(bad.err).toEqual([
      'nanoclaw chats list: --channel "telegram" must be one of whatsapp, local; try nanoclaw chats list --help',
    ]);
    const limit = await cli('chats', 'list', '--limit', '0');
    expect(limit.code).toBe(2);
    expect(limit.err[0]).toMatch(/--limit "0" must be a whole number >= 1/);
    const help = (await ok('chats', 'list', '--help')).join('\n');
    for (const option of ['--channel', '--limit', '--json']) expect(help).toContain(option);
  });
});

describe('tables and help', () => {
  it('prints a header before every human table and none with --json', async () => {
    await ok('groups', 'add', 'local:main', '--name', 'Main', '--folder', 'main', '--main');
    await ok('tasks', 'add', '--group', 'main', '--prompt', 'standup', '--every', '1h');
    withStore((store) => {
      store.audit({
        group: 'main',
        runId: 'r1',
        action: 'egress',
        target: 'evil.test:443',
        reason: 'host_not_allowlisted',
      });
      store.runStarted({ runId: 'r1', groupFolder: 'main', startedAtMs: Date.now() - 5000 });
      store.runEnded({ runId: 'r1', endedAtMs: Date.now(), outcome: 'ok' });
      store.recordUsage({
        groupFolder: 'main',
        runId: 'r1',
        taskId: null,
        usage: { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 },
        atMs: Date.now(),
      });
    });
    const headers: Array<[string[], RegExp]> = [
      [['tasks', 'list', '--group', 'main'], /^id +group +status +schedule +next run +prompt$/],
      [['audit'], /^time +group +run +action +reason +target +count$/],
      [['usage'], /^day +group +requests +input +output +cache_read +cache_write$/],
      [['runs'], /^started +duration +group +kind +outcome +tokens in\/out +error$/],
    ];
    for (const [argv, header] of headers) {
      const table = await ok(...argv);
      expect(table[0], argv.join(' ')).toMatch(header);
      expect(table).toHaveLength(2);
      const json = await ok(...argv, '--json');
      expect(json).toHaveLength(1);
      expect(() => JSON.parse(json[0]) as unknown).not.toThrow();
    }
    expect(await ok('tasks', 'list', '--group', 'other', '--json')).toEqual([]);
  });

  it('documents every new option in --help', async () => {
    const add = (await ok('groups', 'add', '--help')).join('\n');
    for (const o of [
      '--mount',
      '--trigger',
      '--no-trigger',
      '--timeout',
      '--engine',
      'nanoclaw chats list',
    ]) {
      expect(add).toContain(o);
    }
    const edit = (await ok('groups', 'edit', '--help')).join('\n');
    for (const o of [
      '--mount',
      '--no-mounts',
      '--trigger',
      '--no-trigger',
      '--timeout',
      '--engine',
      '--allow',
    ]) {
      expect(edit).toContain(o);
    }
    const top = (await ok('--help')).join('\n');
    expect(top).toMatch(/^ {2}chats +chats seen on the channels/m);
  });
});
