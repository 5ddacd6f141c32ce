// Adversarial end to end, part two: a prompt-injected agent in a non-main group
// uses the real nanoclaw MCP tools against another group (SPEC §7, §10.5), and
// the egress proxy of a group with an allowlist (SPEC §10.2), through the real
// CLI host, bubblewrap, runner and Claude Code, with the fake model scripting it.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import { openStore } from '../../src/store/store.js';
import { assertBuilt, makeCliHome, runCli, type CliHome } from '../support/cli.js';
import {
  lastToolResult,
  startFakeModelServer,
  type FakeModelServer,
  type Turn,
} from '../support/fake-model-server.js';
import { chatLines, shellTool } from './agent-support.js';

for (const bin of ['/usr/bin/bwrap', '/usr/bin/curl']) {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is required by the security suite; install it`);
}

const RUN_TIMEOUT_MS = 120_000;
let home: CliHome | undefined;
let fake: FakeModelServer | undefined;

beforeAll(() => assertBuilt());
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  home?.cleanup();
  home = undefined;
});

interface ToolOutcome {
  text: string;
  isError: boolean;
}

async function newHome(egress?: object, engine: 'claude-code' | 'lite' = 'claude-code'): Promise<CliHome> {
  fake = await startFakeModelServer({ script: [] });
  const h = makeCliHome({
    NANOCLAW_ENGINE: engine,
    ANTHROPIC_API_KEY: `sk-ant-api03-${randomBytes(16).toString('hex')}`,
    ANTHROPIC_BASE_URL: fake.url,
  });
  h.writeConfig({ maxRetries: 0, retryBaseMs: 50 });
  if (egress)
    fs.writeFileSync(path.join(h.env.NANOCLAW_CONFIG_DIR!, 'egress-allowlist.json'), JSON.stringify(egress));
  for (const folder of ['family', 'work']) {
    const added = await runCli(
      ['groups', 'add', `local:${folder}`, '--name', folder, '--folder', folder, '--no-trigger'],
      h.env,
    );
    expect(added.stderr).toBe('');
  }
  return h;
}

/** One `chat --json` run in `chat` whose agent calls the given tools in order. */
async function scriptedRun(
  h: CliHome,
  tools: Array<{ name: string; input: unknown }>,
  chat: string,
): Promise<{ results: ToolOutcome[]; stdout: Array<{ chat: string; text: string }> }> {
  const results: ToolOutcome[] = [];
  const record = (req: Parameters<typeof lastToolResult>[0]): void => {
    results.push(lastToolResult(req) ?? { text: '(no tool result)', isError: true });
  };
  const turns: Turn[] = tools.map((toolUse, i) =>
    i === 0
      ? { toolUse }
      : (req) => {
          record(req);
          return { toolUse };
        },
  );
  turns.push((req) => {
    record(req);
    return { text: 'all checks done' };
  });
  fake!.setScript(turns);
  const res = await runCli(
    ['chat', '--json'],
    h.env,
    `${JSON.stringify({ text: 'go', chat })}\n`,
    RUN_TIMEOUT_MS,
  );
  expect(res.code, res.stderr).toBe(0);
  const stdout = chatLines(res.stdout);
  return { results, stdout };
}

async function audit(h: CliHome, ...filter: string[]): Promise<AuditRecord[]> {
  const res = await runCli(['audit', '--json', ...filter], h.env);
  expect(res.code).toBe(0);
  return res.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);
}

describe('cross-group attacks through the nanoclaw tools', () => {
  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `cannot list, read, change or cancel another group's tasks, message its chat or act as main (${engine})`,
      async () => {
        home = await newHome(undefined, engine);
        // Claude Code sees the nanoclaw tools through MCP; lite calls them by their own names.
        const mcp = (name: string, input: object): { name: string; input: object } => ({
          name: engine === 'lite' ? name : `mcp__nanoclaw__${name}`,
          input,
        });
        const store = openStore(path.join(home.dir, 'store', 'nanoclaw.db'));
        const later = Date.now() + 86_400_000;
        const base = { prompt: 'p', scheduleType: 'cron' as const, scheduleValue: '0 9 * * *' };
        store.createTask({
          ...base,
          id: 'task-work-1',
          groupFolder: 'work',
          chatJid: 'local:work',
          prompt: 'WORK-TASK-PROMPT',
          contextMode: 'group',
          nextRunAt: later,
        });
        store.createTask({
          ...base,
          id: 'task-family-1',
          groupFolder: 'family',
          chatJid: 'local:family',
          contextMode: 'group',
          nextRunAt: later,
        });
        store.close();
        const workTask = { task_id: 'task-work-1' };
        const at = new Date(Date.now() + 3_600_000).toISOString();
        const run = await scriptedRun(
          home,
          [
            mcp('list_tasks', {}),
            mcp('get_task', workTask),
            mcp('cancel_task', workTask),
            mcp('pause_task', workTask),
            mcp('update_task', { ...workTask, prompt: 'hijacked' }),
            mcp('send_message', { text: 'FORGED-TO-WORK', chat_jid: 'local:work' }),
            mcp('schedule_task', {
              prompt: 'x',
              schedule_type: 'once',
              schedule_value: at,
              target_group_folder: 'work',
            }),
            mcp('list_groups', {}),
            mcp('register_group', { jid: 'local:evil', name: 'e', folder: 'evil', trigger: '@Andy' }),
            mcp('unregister_group', { jid: 'local:work' }),
            // A forged identity riding along in the arguments: the runner's tool schema drops
            // the unknown fields, and the host acts for the run's own group regardless.
            mcp('send_message', { text: 'FORGED-AS-MAIN', group_folder: 'main', isMain: true }),
            mcp('schedule_task', {
              prompt: 'x',
              schedule_type: 'once',
              schedule_value: at,
              group_folder: 'work',
            }),
            // Control: the group's own chat works.
            mcp('send_message', { text: 'hello own chat' }),
          ],
          'local:family',
        );
        expect(run.results).toHaveLength(13);
        const [list, ...rest] = run.results;
        const refused = rest.slice(0, 9);
        const [forgedSend, forgedSchedule, own] = rest.slice(9);
        expect(list.isError).toBe(false);
        expect(list.text).toContain('task-family-1');
        expect(list.text).not.toContain('task-work-1');
        expect(list.text).not.toContain('WORK-TASK-PROMPT');
        for (const r of refused) {
          expect(r.isError, r.text).toBe(true);
          expect(r.text).toMatch(/refused: .*(only|own)/);
        }
        // A forged identity in the arguments: Claude Code's tool schema drops the unknown fields and
        // the host acts for the run's own group; lite passes them on and the host refuses the call.
        // Either way nothing happens as main or in another group.
        const forgedHonoured = engine === 'claude-code';
        if (forgedHonoured) {
          expect(forgedSend.isError).toBe(false);
          expect(JSON.parse(forgedSchedule.text)).toMatchObject({
            groupFolder: 'family',
            chatJid: 'local:family',
          });
        } else {
          expect(forgedSend.isError, forgedSend.text).toBe(true);
          expect(forgedSchedule.isError, forgedSchedule.text).toBe(true);
        }
        expect(own.isError).toBe(false);

        // Nothing changed: the work task is intact, no group was added or removed, nothing reached local:work.
        const after = openStore(path.join(home.dir, 'store', 'nanoclaw.db'));
        try {
          const task = after.getTask('task-work-1');
          expect(task?.status).toBe('active');
          expect(task?.prompt).toBe('WORK-TASK-PROMPT');
          expect(after.listTasks('work')).toHaveLength(1);
          expect(after.listTasks('family')).toHaveLength(forgedHonoured ? 2 : 1);
          expect(
            after
              .listGroups()
              .map((g) => g.folder)
              .sort(),
          ).toEqual(['family', 'main', 'work']);
        } finally {
          after.close();
        }
        expect(run.stdout.map((l) => l.chat)).not.toContain('local:work');
        expect(run.stdout).toEqual([
          ...(forgedHonoured ? [{ chat: 'local:family', text: 'FORGED-AS-MAIN' }] : []),
          { chat: 'local:family', text: 'hello own chat' },
          { chat: 'local:family', text: 'all checks done' },
        ]);

        // One audit record per refusal, naming group, run and target, never the payload.
        const records = await audit(home, '--group', 'family', '--action', 'tool_call');
        expect(records.map((r) => `${r.reason} ${r.target}`)).toEqual([
          'not_authorized get_task:task-work-1',
          'not_authorized cancel_task:task-work-1',
          'not_authorized pause_task:task-work-1',
          'not_authorized update_task:task-work-1',
          'not_authorized send_message:local:work',
          'not_authorized schedule_task:work',
          'not_authorized list_groups',
          'not_authorized register_group:local:evil',
          'not_authorized unregister_group:local:work',
          // Lite's forged fields reach the host, which refuses the arguments outright.
          ...(forgedHonoured ? [] : ['invalid_args send_message', 'invalid_args schedule_task']),
        ]);
        const runIds = new Set(records.map((r) => r.runId));
        expect(runIds.size).toBe(1);
        expect([...runIds][0]).toMatch(/^family-/);
        expect(JSON.stringify(records)).not.toMatch(/FORGED|hijacked|WORK-TASK/);
      },
      RUN_TIMEOUT_MS,
    );
});

describe('egress through the broker proxy', () => {
  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `lets a listed loopback upstream through and refuses every other target, with audit records (${engine})`,
      async () => {
        const hits: string[] = [];
        const upstream = http.createServer((req, res) => {
          hits.push(`${req.method} ${req.url}`);
          res.end('UPSTREAM-OK');
        });
        await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
        const port = (upstream.address() as AddressInfo).port;
        try {
          home = await newHome(
            {
              groups: {
                family: [
                  'allowed.test',
                  '*.example.com',
                  'localhost',
                  { host: '127.0.0.1', allowPrivate: true, ports: [port] },
                ],
                work: ['*.example.com'],
              },
            },
            engine,
          );
          // curl is used exactly as the agent would, with the proxy variables the runner set;
          // `--noproxy ''` only overrides NO_PROXY=127.0.0.1 (the runner's own bridges).
          const c = (name: string, args: string): string =>
            `out=$(curl -sS --noproxy '' --max-time 5 ${args} 2>&1); echo "probe|${name}|$?|$(echo "$out" | tr '\\n|' '  ' | cut -c1-120)"`;
          const familyScript = [
            'echo canary:start',
            'echo "probe|proxy_env|$HTTPS_PROXY|$HTTP_PROXY"',
            c('allowed_http', `http://127.0.0.1:${port}/via-http`),
            c('allowed_connect', `-p http://127.0.0.1:${port}/via-connect`),
            c('unlisted_host', 'https://unlisted.test/'),
            c('lookalike', 'https://evil-example.com/'),
            c('suffix_bare', 'https://example.com/'),
            c('public_ip_literal', 'https://93.184.216.34/'),
            c('listed_resolves_loopback', 'http://localhost/'),
            c('port_not_listed', `http://127.0.0.1:${port + 1}/`),
            c('loopback_other', `http://127.0.0.2:${port}/`),
            'echo canary:end',
          ].join('\n');
          const family = await scriptedRun(home, [shellTool(engine, familyScript)], 'local:family');
          const text = family.results[0]?.text ?? '';
          expect(text, text).toContain('canary:end');
          const probes = new Map(
            text
              .split('\n')
              .filter((l) => l.startsWith('probe|'))
              .map((l) => {
                const [, name, rc, detail] = l.split('|');
                return [name, { rc, detail: detail.trim() }] as const;
              }),
          );
          expect(probes.get('proxy_env')?.rc).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
          expect(probes.get('allowed_http')).toEqual({ rc: '0', detail: 'UPSTREAM-OK' });
          expect(probes.get('allowed_connect')).toEqual({ rc: '0', detail: 'UPSTREAM-OK' });
          expect(hits).toEqual(['GET /via-http', 'GET /via-connect']);
          for (const name of [
            'unlisted_host',
            'lookalike',
            'suffix_bare',
            'public_ip_literal',
            'listed_resolves_loopback',
            'port_not_listed',
            'loopback_other',
          ]) {
            // curl fails (exit 56: CONNECT refused; 22/0 with a 403 body for plain HTTP).
            const p = probes.get(name);
            expect(p, text).toBeDefined();
            expect(p!.detail, `${name}: ${text}`).not.toContain('UPSTREAM-OK');
            expect(p!.detail, `${name}: ${text}`).toMatch(/403|egress refused/);
          }

          // The work group: numeric spellings of loopback and the metadata address, none listed.
          const workScript = [
            'echo canary:start',
            ...[
              '127.1',
              '2130706433',
              '0x7f.0.0.1',
              '0177.0.0.1',
              '[::ffff:127.0.0.1]',
              '169.254.169.254',
            ].map((host, i) => c(`numeric_${i}`, `http://${host}:${port}/`)),
            c('connect_numeric', `-p http://2130706433:${port}/`),
            'echo canary:end',
          ].join('\n');
          const work = await scriptedRun(home, [shellTool(engine, workScript)], 'local:work');
          const workText = work.results[0]?.text ?? '';
          expect(workText, workText).toContain('canary:end');
          expect(workText).not.toContain('UPSTREAM-OK');
          expect(workText.match(/egress refused|403/g)?.length ?? 0).toBeGreaterThanOrEqual(7);
          expect(hits).toHaveLength(2);

          const familyRecords = await audit(home, '--group', 'family', '--action', 'egress');
          expect(familyRecords.map((r) => `${r.reason} ${r.target}`)).toEqual([
            'host_not_allowlisted unlisted.test:443',
            'host_not_allowlisted evil-example.com:443',
            'host_not_allowlisted example.com:443',
            'host_not_allowlisted 93.184.216.34:443',
            'private_address localhost:80',
            `port_not_allowed 127.0.0.1:${port + 1}`,
            `host_not_allowlisted 127.0.0.2:${port}`,
          ]);
          const workRecords = await audit(home, '--group', 'work', '--action', 'egress');
          // Identical refusals of one run share a row (SPEC §10.8): the six loopback spellings are one canonical target.
          expect(workRecords.map((r) => `${r.reason} ${r.target} ×${r.count}`)).toEqual([
            `host_not_allowlisted 127.0.0.1:${port} ×6`,
            `host_not_allowlisted 169.254.169.254:${port} ×1`,
          ]);
          for (const r of [...familyRecords, ...workRecords]) expect(r.runId).toMatch(/^(family|work)-/);

          if (engine === 'lite') {
            // lite's web_fetch goes the same way: the listed upstream answers, an unlisted host is refused.
            const fetched = await scriptedRun(
              home,
              [
                { name: 'web_fetch', input: { url: `http://127.0.0.1:${port}/via-fetch` } },
                { name: 'web_fetch', input: { url: 'https://unlisted.test/' } },
              ],
              'local:family',
            );
            expect(fetched.results[0]).toEqual({
              text: `200 http://127.0.0.1:${port}/via-fetch\n\nUPSTREAM-OK`,
              isError: false,
            });
            expect(fetched.results[1].isError).toBe(true);
            expect(fetched.results[1].text).toMatch(/unlisted\.test is not on this chat's egress allowlist/);
            expect(hits).toEqual(['GET /via-http', 'GET /via-connect', 'GET /via-fetch']);
          }
        } finally {
          upstream.close();
        }
      },
      RUN_TIMEOUT_MS,
    );
});
