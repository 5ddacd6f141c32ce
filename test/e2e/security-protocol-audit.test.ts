// Adversarial end to end, part three: a runner that breaks the protocol (the echo
// engine's /garbage and /tool directives, through the real CLI and bwrap), the
// audit trail it leaves (payload-free, filterable), and the usage accounting and
// per-group daily token budget of SPEC §11 with the real agent and the fake model.

import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import type { UsageRow } from '../../src/store/api.js';
import { chatLines } from './agent-support.js';
import { assertBuilt, makeCliHome, runCli, type CliHome } from '../support/cli.js';
import { startFakeModelServer, type FakeModelServer } from '../support/fake-model-server.js';

let home: CliHome | undefined;
let fake: FakeModelServer | undefined;

beforeAll(() => assertBuilt());
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  home?.cleanup();
  home = undefined;
});

function jsonLines<T>(text: string): T[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

async function audit(h: CliHome, ...filter: string[]): Promise<AuditRecord[]> {
  const res = await runCli(['audit', '--json', ...filter], h.env);
  expect(res.code, res.stderr).toBe(0);
  return jsonLines<AuditRecord>(res.stdout);
}

async function addGroup(h: CliHome, folder: string): Promise<void> {
  const res = await runCli(
    ['groups', 'add', `local:${folder}`, '--name', folder, '--folder', folder, '--no-trigger'],
    h.env,
  );
  expect(res.code, res.stderr).toBe(0);
}

describe('protocol abuse from inside the sandbox (echo engine, real bwrap)', () => {
  it('drops garbage, refuses unknown tools and forged identities, audits without payload, and still answers', async () => {
    home = makeCliHome({ LOG_LEVEL: 'info' });
    await addGroup(home, 'family');
    const secret = `PAYLOAD-${randomBytes(6).toString('hex')}`;
    const directives = [
      '/garbage',
      `/tool no_such_tool {"x":"${secret}"}`,
      `/tool send_message {"text":"${secret}","group_folder":"main"}`,
      `/tool send_message {"text":"${secret}","chat_jid":"local:main"}`,
      `/tool cancel_task {"task_id":"${secret}"}`,
      '/tool list_tasks {}',
    ].join('\n');
    const res = await runCli(
      ['chat', '--json'],
      home.env,
      `${JSON.stringify({ text: directives, chat: 'local:family' })}\n`,
    );
    expect(res.code).toBe(0);
    const lines = chatLines(res.stdout);
    // One answer per turn: its lines are the tool outcomes, then the echo.
    const texts = lines.flatMap((l) => l.text.split('\n'));
    expect(lines.every((l) => l.chat === 'local:family')).toBe(true);
    expect(texts).toContain('tool no_such_tool error: unknown tool "no_such_tool"');
    expect(texts.find((t) => t.startsWith('tool send_message error: invalid arguments'))).toMatch(
      /Unrecognized key.*group_folder|group_folder/,
    );
    expect(texts.find((t) => t.includes('send_message error') && t.includes('refused'))).toBeDefined();
    expect(texts).toContain(`tool cancel_task error: task_id: no task "${secret}"`);
    expect(texts).toContain('tool list_tasks ok: []');
    // The run went on after every bad line and answered.
    expect(lines.at(-1)?.text).toMatch(/^echo: \/garbage/m);

    const records = await audit(home, '--group', 'family');
    expect(records.map((r) => `${r.action} ${r.reason} ${r.target}`)).toEqual([
      'protocol malformed_line null',
      'tool_call unknown_tool no_such_tool',
      'tool_call invalid_args send_message',
      'tool_call not_authorized send_message:local:main',
    ]);
    expect(new Set(records.map((r) => r.runId)).size).toBe(1);
    // Payload-free in SQLite and in the log: codes, group, run, target; never bodies.
    expect(JSON.stringify(records)).not.toContain(secret);
    expect(res.stderr).toContain('tool call refused');
    expect(res.stderr).toContain('runner protocol error');
    expect(res.stderr).not.toContain(secret);
    expect(res.stderr).not.toContain('this is not a protocol line');
    for (const line of jsonLines<Record<string, unknown>>(res.stderr)) {
      if (line.msg === 'tool call refused') {
        expect(Object.keys(line).sort()).toEqual([
          'group',
          'level',
          'msg',
          'reason',
          'runId',
          'target',
          'time',
        ]);
      }
    }
  });

  it('nanoclaw audit filters by group, action and time', async () => {
    home = makeCliHome();
    await addGroup(home, 'family');
    const input = [
      { text: '/tool list_groups {}', chat: 'local:family' },
      { text: '/garbage', chat: 'local:main' },
    ]
      .map((m) => JSON.stringify(m))
      .join('\n');
    const res = await runCli(['chat', '--json'], home.env, `${input}\n`);
    expect(res.code).toBe(0);
    const all = await audit(home);
    expect(all.map((r) => `${r.group} ${r.action} ${r.reason}`).sort()).toEqual([
      'family tool_call not_authorized',
      'main protocol malformed_line',
    ]);
    expect((await audit(home, '--group', 'family')).map((r) => r.action)).toEqual(['tool_call']);
    expect((await audit(home, '--group', 'main')).map((r) => r.action)).toEqual(['protocol']);
    expect((await audit(home, '--action', 'protocol')).map((r) => r.group)).toEqual(['main']);
    expect(await audit(home, '--group', 'family', '--action', 'protocol')).toEqual([]);
    expect(await audit(home, '--since', '10m')).toHaveLength(2);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect(await audit(home, '--since', future)).toEqual([]);
    const past = new Date(Date.now() - 3_600_000).toISOString();
    expect(await audit(home, '--since', past, '--action', 'tool_call')).toHaveLength(1);
    const bad = await runCli(['audit', '--action', 'exfiltrate'], home.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--action must be one of/);
    // The plain form is a header and one aligned line per record.
    const plain = await runCli(['audit', '--group', 'family'], home.env);
    const [header, row, ...more] = plain.stdout.trim().split('\n');
    expect(header).toMatch(/^time +group +run +action +reason +target +count$/);
    expect(more).toEqual([]);
    expect(row.split(/ {2,}/).slice(1)).toEqual([
      'family',
      all.find((r) => r.group === 'family')!.runId,
      'tool_call',
      'not_authorized',
      'list_groups',
      '×1',
    ]);
  });
});

describe('usage accounting and the daily token budget (real agent, fake model)', () => {
  it('records the tokens the broker saw, refuses runs past the budget without a model request, and lets the owner change it', async () => {
    const usage = {
      input_tokens: 321,
      output_tokens: 45,
      cache_creation_input_tokens: 6,
      cache_read_input_tokens: 7,
    };
    fake = await startFakeModelServer({ script: [{ text: 'first answer' }], usage });
    home = makeCliHome({
      NANOCLAW_ENGINE: 'claude-code',
      ANTHROPIC_API_KEY: `sk-ant-api03-${randomBytes(16).toString('hex')}`,
      ANTHROPIC_BASE_URL: fake.url,
    });
    home.writeConfig({ maxRetries: 0, retryBaseMs: 50 });
    await addGroup(home, 'family');

    // The owner's command: validated, and shown by `groups list`.
    const set = await runCli(['groups', 'budget', 'local:family', '300'], home.env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('local:family: daily token budget 300 tokens');
    expect((await runCli(['groups', 'list'], home.env)).stdout).toMatch(
      /^local:family +family +.* 300\/day +/m,
    );
    for (const [args, code, message] of [
      [['local:family', 'lots'], 2, /whole number of tokens or "none"/],
      [['local:family', '-5'], 2, /whole number/],
      [['local:family', '1.5'], 2, /whole number/],
      [['local:nobody', '10'], 1, /no registered group local:nobody/],
      [
        ['local:family'],
        2,
        /nanoclaw groups budget: give a jid and a budget, e\.g\. local:family 200000; try nanoclaw groups budget --help/,
      ],
    ] as const) {
      const res = await runCli(['groups', 'budget', ...args], home.env);
      expect(res.code, args.join(' ')).toBe(code);
      expect(res.stderr).toMatch(message);
    }

    // Run 1 is under budget (nothing used yet) and answers.
    const first = await runCli(['chat', '--json'], home.env, '{"text":"hi","chat":"local:family"}\n', 60_000);
    expect(chatLines(first.stdout)).toEqual([{ chat: 'local:family', text: 'first answer' }]);
    const modelCalls = fake.requests.filter((r) => r.path === '/v1/messages').length;
    expect(modelCalls).toBeGreaterThanOrEqual(1);

    const usageRes = await runCli(['usage', '--json', '--group', 'family'], home.env);
    const rows = jsonLines<UsageRow>(usageRes.stdout);
    expect(rows).toEqual([
      {
        day: new Date().toISOString().slice(0, 10),
        groupFolder: 'family',
        requests: modelCalls,
        inputTokens: 321 * modelCalls,
        outputTokens: 45 * modelCalls,
        cacheWriteTokens: 6 * modelCalls,
        cacheReadTokens: 7 * modelCalls,
      },
    ]);
    const plain = await runCli(['usage'], home.env);
    expect(plain.stdout).toMatch(
      new RegExp(`family +${modelCalls} +${321 * modelCalls} +${45 * modelCalls} `),
    );

    // Run 2: the budget is spent; refused before any sandbox or model request, with a notice and an audit record.
    const before = fake.requests.length;
    const second = await runCli(
      ['chat', '--json'],
      home.env,
      '{"text":"again","chat":"local:family"}\n',
      60_000,
    );
    const refused = chatLines(second.stdout);
    expect(refused).toHaveLength(1);
    expect(refused[0].chat).toBe('local:family');
    expect(refused[0].text).toMatch(/daily token budget of this chat \(300 tokens\) is used up/);
    expect(fake.requests.length).toBe(before);
    const records = await audit(home, '--action', 'run_start');
    expect(records.map((r) => [r.group, r.reason, r.target])).toEqual([
      ['family', 'budget_exceeded', 'family'],
    ]);
    // Other groups are not affected by family's budget.
    fake.setScript([{ text: 'main answer' }]);
    const main = await runCli(['chat', '--json'], home.env, '{"text":"hello"}\n', 60_000);
    const mainLines = chatLines(main.stdout);
    expect(mainLines).toContainEqual({ chat: 'local:main', text: 'main answer' });
    // (Start-up recovery retries family's pending message; the budget still refuses it.)
    for (const l of mainLines.filter((x) => x.chat !== 'local:main')) expect(l.text).toMatch(/budget/);

    // The owner lifts the budget: the next run goes through.
    const cleared = await runCli(['groups', 'budget', 'local:family', 'none'], home.env);
    expect(cleared.stdout).toContain('local:family: no daily token budget');
    fake.setScript([{ text: 'third answer' }]);
    const third = await runCli(
      ['chat', '--json'],
      home.env,
      '{"text":"once more","chat":"local:family"}\n',
      60_000,
    );
    expect(jsonLines<{ text: string }>(third.stdout).map((l) => l.text)).toContain('third answer');
  });
});
