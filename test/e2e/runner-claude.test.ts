// End to end through the real pieces: the bundled runner, the Agent SDK and the
// native Claude Code binary, run unsandboxed but as uid 1000, talking to the
// scripted fake model server on a unix socket (so the runner's loopback bridge
// is on the path). Only the model is fake.

import { chownSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TOOL_NAMES, type StartLine } from '../../src/core/protocol.js';
import {
  lastToolResult,
  requestText,
  startFakeModelServer,
  type FakeModelServer,
  type Turn,
} from '../support/fake-model-server.js';
import {
  AGENT_GID,
  AGENT_UID,
  bundleRunner,
  isType,
  makeAgentDirs,
  spawnRunner,
  type AgentDirs,
  type RunnerHarness,
} from '../support/runner-fixtures.js';

const PLACEHOLDER_KEY = 'nanoclaw-placeholder-e2e-0123456789';
const E2E_TIMEOUT_MS = 20_000;

let dirs: AgentDirs;
let server: FakeModelServer | undefined;
let runner: RunnerHarness | undefined;
let socketCount = 0;

beforeAll(() => {
  bundleRunner();
  dirs = makeAgentDirs(AGENT_UID, AGENT_GID);
});

afterEach(async () => {
  if (runner && runner.child.exitCode === null) runner.child.kill('SIGKILL');
  runner = undefined;
  await server?.close();
  server = undefined;
});

afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));

async function startServer(script: Turn[]): Promise<FakeModelServer> {
  const socketPath = path.join(dirs.socketDir, `model-${++socketCount}.sock`);
  server = await startFakeModelServer({ script, listen: { socketPath } });
  chownSync(socketPath, AGENT_UID, AGENT_GID);
  return server;
}

function startRun(fake: FakeModelServer, prompt: string, extra: Partial<StartLine> = {}): RunnerHarness {
  runner = spawnRunner({
    uid: AGENT_UID,
    gid: AGENT_GID,
    cwd: dirs.groupDir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      // Must not reach Claude Code: its environment is built explicitly.
      NANOCLAW_CANARY: 'leaked-from-runner-env',
    },
  });
  runner.send({
    type: 'start',
    runId: `run-${socketCount}`,
    prompt,
    group: { folder: 'main', isMain: true, name: 'Main' },
    assistantName: 'Andy',
    engine: 'claude-code',
    paths: { groupDir: dirs.groupDir, globalDir: dirs.globalDir, homeDir: dirs.homeDir },
    model: { socketPath: fake.socketPath ?? '', placeholderKey: PLACEHOLDER_KEY },
    ...extra,
  });
  return runner;
}

async function closeRun(r: RunnerHarness): Promise<{ sessionId?: string; error?: string }> {
  r.send({ type: 'close' });
  const done = await r.waitFor(isType('done'));
  expect((await r.exit).code).toBe(0);
  return done;
}

describe('runner with Claude Code against the fake model', () => {
  it(
    'delivers a scripted text reply as output, with the placeholder key and all nanoclaw tools',
    async () => {
      const fake = await startServer([{ text: 'Hello from the fake model' }]);
      const spawnedAt = Date.now();
      const r = startRun(fake, 'Say hello');
      const [first] = await fake.waitForConversationRequests(1);
      const coldMs = Date.now() - spawnedAt;
      console.info(`cold start: spawn → first model request ${coldMs} ms`);

      const output = await r.waitFor(isType('output'));
      expect(output.text).toBe('Hello from the fake model');
      expect(output.sessionId).toMatch(/^[0-9a-f-]{36}$/);

      // The broker, not the sandbox, holds the real credential.
      expect(first.headers['x-api-key']).toBe(PLACEHOLDER_KEY);
      expect(first.path).toBe('/v1/messages');
      expect(requestText(first)).toContain('Say hello');
      const toolNames = ((first.body as { tools: Array<{ name: string }> }).tools ?? []).map((t) => t.name);
      for (const name of TOOL_NAMES) expect(toolNames).toContain(`mcp__nanoclaw__${name}`);

      const done = await closeRun(r);
      expect(done).toEqual({ type: 'done', sessionId: output.sessionId });
      // Every request the model server saw went through the loopback bridge with the placeholder.
      for (const req of fake.requests) expect(req.headers['x-api-key']).toBe(PLACEHOLDER_KEY);
    },
    E2E_TIMEOUT_MS,
  );

  it(
    'turns an MCP tool call into a tool_call line and feeds the host result back to the model',
    async () => {
      const fake = await startServer([
        { toolUse: { name: 'mcp__nanoclaw__send_message', input: { text: 'progress update' } } },
        (req) => ({ text: `tool said: ${lastToolResult(req)?.text}` }),
        { toolUse: { name: 'mcp__nanoclaw__list_groups', input: {} } },
        (req) => ({
          text: `second tool: ${lastToolResult(req)?.isError ? 'error' : 'ok'} ${lastToolResult(req)?.text}`,
        }),
      ]);
      const r = startRun(fake, 'Send a progress update');
      const call = await r.waitFor(isType('tool_call'));
      expect(call).toMatchObject({ name: 'send_message', args: { text: 'progress update' } });
      r.send({ type: 'tool_result', id: call.id, ok: true, result: { delivered: true } });
      const output = await r.waitFor(isType('output'));
      expect(output.text).toBe('tool said: {"delivered":true}');
      const [, second] = await fake.waitForConversationRequests(2);
      expect(lastToolResult(second)).toEqual({ text: '{"delivered":true}', isError: false });

      // A refusal from the host reaches the model as an error result.
      r.send({ type: 'message', text: 'List the groups' });
      const refused = await r.waitFor((l) => l.type === 'tool_call' && l.id !== call.id);
      expect(refused).toMatchObject({ name: 'list_groups' });
      r.send({
        type: 'tool_result',
        id: (refused as { id: string }).id,
        ok: false,
        error: 'not allowed for this group',
      });
      const out2 = await r.waitFor((l) => l.type === 'output' && l !== output);
      expect(out2.type === 'output' && out2.text).toBe('second tool: error not allowed for this group');
      await closeRun(r);
    },
    E2E_TIMEOUT_MS,
  );

  it(
    'passes a follow-up message to the live session as a new model request',
    async () => {
      const fake = await startServer([{ text: 'first answer' }, { text: 'second answer' }]);
      const r = startRun(fake, 'First question');
      const first = await r.waitFor(isType('output'));
      expect(first.text).toBe('first answer');
      const pid = r.child.pid;

      r.send({ type: 'message', text: 'Second question' });
      const second = await r.waitFor((l) => l.type === 'output' && l.text === 'second answer');
      expect(r.child.pid).toBe(pid);
      expect(second).toMatchObject({ sessionId: first.sessionId });
      const requests = await fake.waitForConversationRequests(2);
      const text = requestText(requests[1]);
      expect(text).toContain('First question');
      expect(text).toContain('first answer');
      expect(text).toContain('Second question');
      await closeRun(r);
    },
    E2E_TIMEOUT_MS,
  );

  it(
    'resumes a session: the second run sends the first conversation to the model',
    async () => {
      const fake = await startServer([{ text: 'The secret word is marmalade.' }, { text: 'resumed fine' }]);
      const r1 = startRun(fake, 'Remember the secret word');
      const out1 = await r1.waitFor(isType('output'));
      const done1 = await closeRun(r1);
      expect(done1.sessionId).toBe(out1.sessionId);

      const r2 = startRun(fake, 'What was the secret word?', { sessionId: done1.sessionId });
      const out2 = await r2.waitFor(isType('output'));
      expect(out2.text).toBe('resumed fine');
      const requests = await fake.waitForConversationRequests(2);
      const text = requestText(requests[1]);
      expect(text).toContain('Remember the secret word');
      expect(text).toContain('The secret word is marmalade.');
      expect(text).toContain('What was the secret word?');
      await closeRun(r2);
    },
    E2E_TIMEOUT_MS,
  );

  it(
    "gives Claude Code only its explicit environment, and the group's CLAUDE.md plus global memory",
    async () => {
      writeFileSync(path.join(dirs.groupDir, 'CLAUDE.md'), 'GROUP-MEMORY-MARKER: this group likes tea.\n');
      writeFileSync(path.join(dirs.globalDir, 'CLAUDE.md'), 'GLOBAL-MEMORY-MARKER: the owner is Sam.\n');
      const fake = await startServer([
        { toolUse: { name: 'Bash', input: { command: 'env', description: 'print env' } } },
        (req) => ({ text: lastToolResult(req)?.text ?? 'no result' }),
      ]);
      const r = startRun(fake, 'Print the environment', {
        group: { folder: 'family', isMain: false, name: 'Family' },
      });
      const output = await r.waitFor(isType('output'));
      const env = output.text ?? '';
      expect(env).toContain(`ANTHROPIC_API_KEY=${PLACEHOLDER_KEY}`);
      expect(env).toMatch(/ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:\d+/);
      expect(env).toContain(`HOME=${dirs.homeDir}`);
      expect(env).not.toContain('NANOCLAW_CANARY');
      expect(env).not.toMatch(/^HTTPS?_PROXY=/m);

      const [first] = fake.conversationRequests();
      const everything = JSON.stringify(first.body);
      expect(everything).toContain('GROUP-MEMORY-MARKER');
      expect(everything).toContain('GLOBAL-MEMORY-MARKER');
      await closeRun(r);
    },
    E2E_TIMEOUT_MS,
  );

  it(
    'close during a turn lets the turn finish, then ends with done',
    async () => {
      const fake = await startServer([
        { toolUse: { name: 'mcp__nanoclaw__list_tasks', input: {} } },
        (req) => ({ text: `tasks: ${lastToolResult(req)?.text}` }),
      ]);
      const r = startRun(fake, 'List my tasks');
      const call = await r.waitFor(isType('tool_call'));
      r.send({ type: 'close' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      r.send({ type: 'tool_result', id: call.id, ok: true, result: [] });
      const output = await r.waitFor(isType('output'));
      expect(output.text).toBe('tasks: []');
      const done = await r.waitFor(isType('done'));
      expect(done.error).toBeUndefined();
      expect((await r.exit).code).toBe(0);
    },
    E2E_TIMEOUT_MS,
  );

  it(
    'a model API error fails the run with done{error} and exit 1',
    async () => {
      // Claude Code re-sends a refused request a few times (6 attempts observed) before giving up.
      const refusal: Turn = {
        error: { status: 400, type: 'invalid_request_error', message: 'budget exceeded for this group' },
      };
      const fake = await startServer(Array<Turn>(12).fill(refusal));
      const r = startRun(fake, 'Hello');
      const done = await r.waitFor(isType('done'));
      expect(done.error).toMatch(/budget exceeded for this group/);
      expect((await r.exit).code).toBe(1);
      expect(r.lines.filter((l) => l.type === 'output')).toEqual([]);
    },
    E2E_TIMEOUT_MS,
  );
});
