// The runner's building blocks in isolation: the loopback bridge, the Claude
// Code environment and options, the tool table and the echo prompt parser.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOL_NAMES, type StartLine } from '../../../src/core/protocol.js';
import { startBridge } from '../../../runner/bridge.js';
import {
  buildClaudeEnv,
  buildQueryOptions,
  checkWritableDirs,
  PromptStream,
} from '../../../runner/engine-claude.js';
import { promptText } from '../../../runner/engine-echo.js';
import { globalMemory } from '../../../runner/memory.js';
import { HostConnection } from '../../../runner/protocol-io.js';
import { TOOL_SPECS, toToolResult, type McpSdk } from '../../../runner/tools.js';
import { PassThrough } from 'node:stream';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'runner-parts-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(extra: Partial<StartLine> = {}): StartLine {
  return {
    type: 'start',
    runId: 'r',
    prompt: 'p',
    group: { folder: 'family', isMain: false, name: 'Family' },
    assistantName: 'Andy',
    engine: 'claude-code',
    paths: { groupDir: path.join(dir, 'group'), globalDir: dir, homeDir: '/home/agent' },
    model: { socketPath: '/run/nanoclaw/model.sock', placeholderKey: 'ph-key' },
    ...extra,
  };
}

describe('bridge', () => {
  it('pipes TCP connections on 127.0.0.1 to the unix socket, both ways', async () => {
    const socketPath = path.join(dir, 'echo.sock');
    const upstream = net.createServer((s) => s.on('data', (d) => s.write(`upstream:${d.toString()}`)));
    await new Promise<void>((resolve) => upstream.listen(socketPath, resolve));
    const bridge = await startBridge(socketPath);
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const client = net.createConnection({ host: '127.0.0.1', port: bridge.port }, () =>
          client.write('ping'),
        );
        client.on('data', (d) => {
          resolve(d.toString());
          client.destroy();
        });
        client.on('error', reject);
      });
      expect(reply).toBe('upstream:ping');
    } finally {
      await bridge.close();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    }
  });
});

describe('Claude Code environment', () => {
  const bridge = (port: number) => ({ port, close: async () => undefined });

  it('is minimal and explicit: no runner env leaks, no proxy without egress', () => {
    const env = buildClaudeEnv({
      start: start(),
      runnerEnv: { PATH: '/usr/bin', LANG: 'en_US.UTF-8', TZ: 'Europe/Berlin', SECRET_THING: 'x' },
      modelBridge: bridge(4100),
    });
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/agent',
      LANG: 'en_US.UTF-8',
      TZ: 'Europe/Berlin',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:4100',
      ANTHROPIC_API_KEY: 'ph-key',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
    });
  });

  it('points every proxy variable at the egress bridge when there is one', () => {
    const env = buildClaudeEnv({
      start: start({ egress: { socketPath: '/run/nanoclaw/egress.sock' } }),
      runnerEnv: {},
      modelBridge: bridge(4100),
      egressBridge: bridge(4200),
    });
    for (const key of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) {
      expect(env[key]).toBe('http://127.0.0.1:4200');
    }
    expect(env.NO_PROXY).toBe('127.0.0.1,localhost');
  });

  it('appends global/CLAUDE.md for non-main groups only', () => {
    writeFileSync(path.join(dir, 'CLAUDE.md'), 'shared memory\n');
    expect(globalMemory(start())).toBe('shared memory');
    expect(globalMemory(start({ group: { folder: 'main', isMain: true, name: 'Main' } }))).toBeUndefined();
    expect(
      globalMemory(start({ paths: { groupDir: dir, globalDir: path.join(dir, 'none'), homeDir: dir } })),
    ).toBe(undefined);
  });

  it('builds query options: cwd, resume, bypass permissions, project settings, nanoclaw server', () => {
    const registered: string[] = [];
    const fakeSdk = {
      tool: (name: string) => {
        registered.push(name);
        return { name };
      },
      createSdkMcpServer: (o: { name: string }) => ({ type: 'sdk', name: o.name, instance: {} }),
    } as unknown as McpSdk;
    const conn = new HostConnection(new PassThrough(), new PassThrough());
    const options = buildQueryOptions(
      fakeSdk,
      conn,
      { start: start({ sessionId: 'sess-1' }), runnerEnv: {} },
      () => undefined,
    );
    expect(options).toMatchObject({
      cwd: path.join(dir, 'group'),
      resume: 'sess-1',
      permissionMode: 'bypassPermissions',
      allowDangerouslySkipPermissions: true,
      systemPrompt: { type: 'preset', preset: 'claude_code', append: 'shared memory' },
    });
    expect(options.settingSources).toContain('project');
    expect(Object.keys(options.mcpServers ?? {})).toEqual(['nanoclaw']);
    expect(registered).toEqual([...TOOL_NAMES]);
    expect(options.env?.ANTHROPIC_API_KEY).toBeUndefined();
    expect(options.model).toBeUndefined();
    const chosen = buildQueryOptions(
      fakeSdk,
      conn,
      { start: { ...start(), modelName: 'claude-sonnet-4-5' }, runnerEnv: {} },
      () => undefined,
    );
    expect(chosen.model).toBe('claude-sonnet-4-5');
    const switched = buildQueryOptions(
      fakeSdk,
      conn,
      { start: start({ sessionId: 'lite-0123456789abcdef01234567' }), runnerEnv: {} },
      () => undefined,
    );
    expect(switched.resume).toBeUndefined();
  });
});

describe('preflight', () => {
  it('names the directory Claude Code could not write, instead of letting it hang', () => {
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const problem = checkWritableDirs(start({ paths: { groupDir: dir, globalDir: dir, homeDir: file } }));
    expect(problem).toMatch(/not-a-dir.* is not writable/);
    const home = mkdtempSync(path.join(dir, 'home-'));
    expect(
      checkWritableDirs(start({ paths: { groupDir: dir, globalDir: dir, homeDir: home } })),
    ).toBeUndefined();
  });
});

describe('tools', () => {
  it('has a description and schema for every protocol tool name', () => {
    expect(Object.keys(TOOL_SPECS).sort()).toEqual([...TOOL_NAMES].sort());
    for (const spec of Object.values(TOOL_SPECS)) expect(spec.description.length).toBeGreaterThan(10);
  });

  it('maps host answers to MCP results', () => {
    expect(toToolResult({ ok: true, result: { id: 't1' } })).toEqual({
      content: [{ type: 'text', text: '{"id":"t1"}' }],
    });
    expect(toToolResult({ ok: false, error: 'task_id: required' })).toEqual({
      content: [{ type: 'text', text: 'task_id: required' }],
      isError: true,
    });
  });

  it('forwards a call as a tool_call line and resolves with the matching tool_result', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const conn = new HostConnection(input, output);
    const written: string[] = [];
    output.on('data', (d: Buffer) => written.push(...d.toString().split('\n').filter(Boolean)));
    const pending = conn.callTool('get_task', { task_id: 't9' });
    await new Promise((r) => setImmediate(r));
    const call = JSON.parse(written[0] ?? '{}');
    expect(call).toMatchObject({ type: 'tool_call', name: 'get_task', args: { task_id: 't9' } });
    input.write(
      JSON.stringify({ type: 'tool_result', id: call.id, ok: true, result: { status: 'active' } }) + '\n',
    );
    expect(await pending).toEqual({ ok: true, result: { status: 'active' } });
  });
});

describe('echo prompt parsing and the prompt stream', () => {
  it('extracts and unescapes message bodies from a <messages> prompt', () => {
    const prompt =
      '<messages>\n<message sender="A &amp; B" time="t1">x &lt; y &amp;&amp; &quot;z&quot;</message>\n' +
      '<message sender="C" time="t2">line1\nline2</message>\n</messages>';
    expect(promptText(prompt)).toBe('x < y && "z"\nline1\nline2');
    expect(promptText('just text <b>')).toBe('just text <b>');
  });

  it('reads the bodies past a context header, without the quoted excerpt of a reply', () => {
    const prompt = [
      '<context assistant="Andy" chat="Main" chat_id="local:main" chat_type="direct" channel="local" time_zone="UTC" now="n"/>',
      '<messages>',
      '<message sender="A" time="t1" reply_to="q1"><quoted sender="B">earlier &lt;/quoted&gt; text</quoted>yes</message>',
      '<message sender="C" time="t2">/sleep 1</message>',
      '</messages>',
    ].join('\n');
    expect(promptText(prompt)).toBe('yes\n/sleep 1');
  });

  it('reads the task text of a scheduled task prompt', () => {
    const prompt = [
      '<context assistant="Andy" chat="Main" chat_id="local:main" chat_type="direct" channel="local" time_zone="UTC" now="n"/>',
      '<scheduled_task id="t1" schedule_type="once" schedule_value="v">',
      'This is a scheduled task.',
      '<task>say &lt;hi&gt;\n/tool list_tasks {}</task>',
      '</scheduled_task>',
    ].join('\n');
    expect(promptText(prompt)).toBe('say <hi>\n/tool list_tasks {}');
  });

  it('yields pushed prompts in order and ends after end()', async () => {
    const stream = new PromptStream();
    stream.push('a');
    const seen: string[] = [];
    const reading = (async () => {
      for await (const m of stream) seen.push(String(m.message.content));
    })();
    stream.push('b');
    await new Promise((r) => setImmediate(r));
    stream.end();
    stream.push('ignored');
    await reading;
    expect(seen).toEqual(['a', 'b']);
  });
});
