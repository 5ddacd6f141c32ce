// The `lite` engine end to end: the real CLI host, real bubblewrap, the real
// broker and the bundled runner's own agent loop against the scripted fake
// model. A run answers, uses its file tools in the group folder, calls the
// nanoclaw tools through the host, and resumes its session in the next run;
// the sandbox holds no credential and reaches nothing but the broker.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';
import {
  requestText,
  startFakeModelServer,
  type RecordedRequest,
  type StaticTurn,
} from '../support/fake-model-server.js';
import {
  REAL_KEY,
  answeredToolResult,
  chatLines,
  lastUserText,
  toolResultCount,
  useAgentFixture,
} from './agent-support.js';

const fixture = useAgentFixture();
const LITE = { NANOCLAW_ENGINE: 'lite' };

const tool = (name: string, input: unknown): StaticTurn => ({ toolUse: { name, input } });

type Body = {
  system?: Array<{ text: string; cache_control?: unknown }>;
  tools?: Array<{ name: string; cache_control?: unknown }>;
  messages?: Array<{ content: unknown }>;
  model?: string;
};

/** `groups add` for a family chat that runs on the lite engine whatever the config says. */
const ADD_FAMILY_LITE = [
  'groups',
  'add',
  'local:family',
  '--name',
  'Family',
  '--folder',
  'family',
  '--no-trigger',
  '--engine',
  'lite',
];
describe('the lite engine', () => {
  it('answers, writes and reads a file, calls send_message and schedule_task, and resumes its session', async () => {
    const results: string[] = [];
    const { fake, home } = await fixture.setUp((req: RecordedRequest) => {
      const prompt = lastUserText(req);
      const answered = answeredToolResult(req);
      if (answered) results.push(`${answered.isError ? 'ERR' : 'OK'} ${answered.text}`);
      if (prompt.includes('SECOND')) {
        return { text: `second turn; earlier history seen: ${requestText(req).includes('FIRST please')}` };
      }
      switch (toolResultCount(req)) {
        case 0:
          return tool('write', { path: 'notes/a.txt', content: 'lite-content-42\nline two\n' });
        case 1:
          return tool('read', { path: 'notes/a.txt' });
        case 2:
          return tool('send_message', { text: 'progress from lite' });
        case 3:
          return tool('schedule_task', {
            prompt: 'weekly review',
            schedule_type: 'cron',
            schedule_value: '0 9 * * 1',
          });
        default:
          return { text: 'FIRST done' };
      }
    });
    const env = { ...home.env, ...LITE };

    const first = await runCli(
      ['chat', '--json'],
      env,
      JSON.stringify({ text: 'FIRST please' }) + '\n',
      60_000,
    );
    expect(first.code, first.stderr).toBe(0);
    expect(chatLines(first.stdout)).toEqual([
      { chat: 'local:main', text: 'progress from lite' },
      { chat: 'local:main', text: 'FIRST done' },
    ]);
    expect(results[0]).toMatch(/^OK wrote 25 bytes to \/.*notes\/a\.txt$/);
    expect(results[1]).toMatch(/^OK +1\tlite-content-42\n +2\tline two$/);
    expect(results[2]).toMatch(/^OK /);
    expect(results[3]).toMatch(/^OK \{.*"scheduleType":"cron"/);
    expect(fs.readFileSync(path.join(home.dir, 'groups', 'main', 'notes', 'a.txt'), 'utf8')).toBe(
      'lite-content-42\nline two\n',
    );
    const tasks = await runCli(['tasks', 'list'], env);
    expect(tasks.stdout).toMatch(/ main +active +cron /);

    // What reached the model: the broker's real key, cache breakpoints, both memories, the shared tools.
    const [firstRequest] = fake.conversationRequests();
    expect(firstRequest.headers['x-api-key']).toBe(REAL_KEY);
    const body = firstRequest.body as Body;
    expect(body.system?.at(-1)?.cache_control).toEqual({ type: 'ephemeral' });
    expect(body.tools?.at(-1)?.cache_control).toEqual({ type: 'ephemeral' });
    expect(JSON.stringify(body.messages?.at(-1))).toContain('"cache_control":{"type":"ephemeral"}');
    // The main group's own memory (its starter CLAUDE.md) is in the system prompt.
    expect(body.system?.map((b) => b.text).join('\n')).toContain('<memory file="CLAUDE.md">');
    expect(body.tools?.map((t) => t.name)).toEqual(
      expect.arrayContaining(['bash', 'edit', 'send_message', 'schedule_task']),
    );

    // A new run of the same chat resumes the stored session.
    const second = await runCli(
      ['chat', '--json'],
      env,
      JSON.stringify({ text: 'SECOND now' }) + '\n',
      60_000,
    );
    expect(second.code, second.stderr).toBe(0);
    expect(chatLines(second.stdout)).toEqual([
      { chat: 'local:main', text: 'second turn; earlier history seen: true' },
    ]);
    const sessions = fs.readdirSync(path.join(home.dir, 'data', 'sessions', 'main', 'lite'));
    expect(sessions).toHaveLength(1);
  });

  it('runs lite for a group that picked it while the configured engine is claude-code', async () => {
    const { fake, home } = await fixture.setUp(() => ({ text: 'lite here' }));
    const added = await runCli(ADD_FAMILY_LITE, home.env);
    expect(added.code, added.stderr).toBe(0);
    // Its own memory and the shared one both reach the system prompt.
    fs.mkdirSync(path.join(home.dir, 'groups', 'global'), { recursive: true });
    fs.writeFileSync(path.join(home.dir, 'groups', 'global', 'CLAUDE.md'), 'GLOBAL-MEMORY-MARK\n');
    fs.mkdirSync(path.join(home.dir, 'groups', 'family'), { recursive: true });
    fs.writeFileSync(path.join(home.dir, 'groups', 'family', 'CLAUDE.md'), 'FAMILY-MEMORY-MARK\n');
    const res = await runCli(
      ['chat', '--json'],
      home.env,
      JSON.stringify({ text: 'hello', chat: 'local:family', sender: 'alice' }) + '\n',
      60_000,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(chatLines(res.stdout)).toEqual([{ chat: 'local:family', text: 'lite here' }]);
    // Lite's own tool set, not Claude Code's (which names its shell tool "Bash").
    const names = (fake.conversationRequests()[0].body as Body).tools?.map((t) => t.name) ?? [];
    expect(names).toContain('bash');
    expect(names).not.toContain('Bash');
    const system = ((fake.conversationRequests()[0].body as Body).system ?? []).map((b) => b.text).join('\n');
    expect(system).toContain('FAMILY-MEMORY-MARK');
    expect(system).toContain('GLOBAL-MEMORY-MARK');
    expect(fs.readdirSync(path.join(home.dir, 'data', 'sessions', 'family', 'lite'))).toHaveLength(1);
  });

  it('speaks to an OpenAI-compatible provider for a group set to it: tools, the provider key, usage', async () => {
    type ChatBody = { model?: string; messages?: Array<{ role: string; content: unknown }> };
    const { fake, home } = await fixture.setUp((req) => {
      const last = (req.body as ChatBody).messages?.at(-1);
      if (last?.role === 'tool') return { text: `tool said: ${String(last.content)}` };
      return tool('write', { path: 'from-openai.txt', content: 'written via chat completions' });
    });
    home.writeConfig({ openaiProvider: { baseUrl: fake.url, model: 'qwen-test' } });
    const env = { ...home.env, OPENAI_API_KEY: 'sk-openai-e2e-key' };
    for (const args of [ADD_FAMILY_LITE, ['groups', 'edit', 'local:family', '--provider', 'openai']]) {
      const r = await runCli(args, env);
      expect(r.code, r.stderr).toBe(0);
    }
    const res = await runCli(
      ['chat', '--json'],
      env,
      JSON.stringify({ text: 'write it', chat: 'local:family', sender: 'alice' }) + '\n',
      60_000,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(chatLines(res.stdout)).toEqual([
      {
        chat: 'local:family',
        text: expect.stringMatching(/^tool said: wrote 28 bytes to \/.*from-openai\.txt$/),
      },
    ]);
    expect(fs.readFileSync(path.join(home.dir, 'groups', 'family', 'from-openai.txt'), 'utf8')).toBe(
      'written via chat completions',
    );
    const requests = fake.conversationRequests();
    expect(requests.map((r) => r.path)).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
    for (const r of requests) {
      expect(r.headers.authorization).toBe('Bearer sk-openai-e2e-key');
      expect(r.headers['x-api-key']).toBeUndefined();
      expect((r.body as ChatBody).model).toBe('qwen-test');
    }
    // Usage is recorded like the Messages API's: two requests of the fake's 100 in / 20 out.
    const runs = await runCli(['runs', '--json', '--group', 'family'], env);
    const [run] = runs.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { tokens: { inputTokens: number; outputTokens: number } });
    expect(run.tokens).toMatchObject({ inputTokens: 200, outputTokens: 40 });

    // Claude Code does not speak chat completions: the run is refused, saying what to do.
    const edited = await runCli(['groups', 'edit', 'local:family', '--engine', 'claude-code'], env);
    expect(edited.code, edited.stderr).toBe(0);
    const refused = await runCli(
      ['chat', '--json'],
      env,
      JSON.stringify({ text: 'again', chat: 'local:family', sender: 'alice' }) + '\n',
      60_000,
    );
    expect(chatLines(refused.stdout).map((l) => l.text)).toEqual([
      expect.stringMatching(/only the lite engine speaks: nanoclaw groups edit local:family --engine lite/),
    ]);
    expect(fake.conversationRequests()).toHaveLength(2);
  });

  it('compacts a context that nears its window: archives, summarises, and goes on from the summary', async () => {
    let summaryRequests = 0;
    const { fake, home } = await fixture.setUp((req) => {
      const prompt = lastUserText(req);
      if (prompt.startsWith('Summarise the conversation so far')) {
        summaryRequests++;
        return { text: `SUMMARY-XYZ (saw FILL-1: ${requestText(req).includes('FILL-1 big')})` };
      }
      if (prompt.includes('FILL-2')) {
        const seen = requestText(req);
        return {
          text: `summary: ${seen.includes('SUMMARY-XYZ (saw FILL-1: true)')}; raw: ${seen.includes('FILL-1 big')}`,
        };
      }
      if (prompt.includes('FILL-3'))
        return { text: `still summary: ${requestText(req).includes('SUMMARY-XYZ')}` };
      // Last: the summary at the head of FILL-2's prompt names FILL-1 too.
      if (prompt.includes('FILL-1')) return { text: 'filled', usage: { input_tokens: 5000 } };
      return { text: 'unexpected request' };
    });
    home.writeConfig({ contextWindowTokens: 6000, compactAtFraction: 0.75 });
    const env = { ...home.env, ...LITE };
    const say = async (text: string): Promise<string[]> => {
      const res = await runCli(['chat', '--json'], env, JSON.stringify({ text }) + '\n', 60_000);
      expect(res.code, res.stderr).toBe(0);
      return chatLines(res.stdout).map((l) => l.text);
    };
    expect(await say('FILL-1 big context')).toEqual(['filled']);
    expect(summaryRequests).toBe(0);
    expect(await say('FILL-2 next')).toEqual(['summary: true; raw: false']);
    expect(summaryRequests).toBe(1);
    // Below the threshold again: no second summary, and the summary stays in the history.
    expect(await say('FILL-3 after')).toEqual(['still summary: true']);
    expect(summaryRequests).toBe(1);

    const archiveDir = path.join(home.dir, 'groups', 'main', 'conversations');
    const archives = fs.readdirSync(archiveDir);
    expect(archives).toHaveLength(1);
    expect(archives[0]).toMatch(/^\d{4}-\d\d-\d\d-fill-1-big-context\.md$/);
    const archived = fs.readFileSync(path.join(archiveDir, archives[0]), 'utf8');
    expect(archived).toContain('FILL-1 big context');
    expect(archived).toContain('filled');
    expect(fake.conversationRequests()).toHaveLength(4);
  });

  it('the sandbox holds no credential and reaches no network but the broker', async () => {
    let probe = '';
    const { fake, home } = await fixture.setUp((req) => {
      const answered = answeredToolResult(req);
      if (answered) {
        probe = answered.text;
        return { text: 'probed' };
      }
      return tool('bash', {
        command: [
          `for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null; done | sort -u`,
          'echo ---',
          `curl -sS -m 5 ${fake.url}/v1/messages >/dev/null 2>&1 && echo model-direct:reached || echo model-direct:blocked`,
          'curl -sS -m 5 https://example.com >/dev/null 2>&1 && echo internet:reached || echo internet:blocked',
        ].join('\n'),
      });
    });
    const res = await runCli(
      ['chat', '--json'],
      { ...home.env, ...LITE },
      JSON.stringify({ text: 'probe' }) + '\n',
      60_000,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(chatLines(res.stdout)).toEqual([{ chat: 'local:main', text: 'probed' }]);
    expect(probe).toContain('model-direct:blocked');
    expect(probe).toContain('internet:blocked');
    expect(probe).toMatch(/^HOME=/m);
    expect(probe).not.toContain(REAL_KEY);
    expect(probe).not.toContain(REAL_KEY.slice(8, 28));
  });
});

describe('a lite-only install', () => {
  it('runs the lite engine from the runner bundle alone, with no node_modules (so no Claude Code) beside it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lite-only-'));
    const fake = await startFakeModelServer({
      script: [{ text: 'answered without node_modules' }],
      listen: { socketPath: path.join(dir, 'model.sock') },
    });
    try {
      const runner = path.join(dir, 'runner.mjs');
      fs.copyFileSync(path.join(REPO_ROOT, 'dist', 'runner.mjs'), runner);
      const child = spawn(process.execPath, [runner], {
        cwd: dir,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH },
      });
      const lines: Array<{ type: string; text?: string | null; error?: string }> = [];
      readline
        .createInterface({ input: child.stdout })
        .on('line', (l) => lines.push(JSON.parse(l) as (typeof lines)[number]));
      const start = {
        type: 'start',
        runId: 'lite-only',
        prompt: 'hello',
        group: { folder: 'g', isMain: false, name: 'G' },
        assistantName: 'Andy',
        engine: 'lite',
        paths: { groupDir: dir, globalDir: dir, homeDir: dir },
        model: { socketPath: path.join(dir, 'model.sock'), placeholderKey: 'ph' },
      };
      child.stdin.end(JSON.stringify(start) + '\n');
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      expect(lines.filter((l) => l.type !== 'log')).toEqual([
        { type: 'ready' },
        { type: 'output', text: 'answered without node_modules', sessionId: expect.stringMatching(/^lite-/) },
        { type: 'done', sessionId: expect.stringMatching(/^lite-/) },
      ]);
    } finally {
      await fake.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
