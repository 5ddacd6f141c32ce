// Shared pieces of the agent-run e2e files: a CLI home wired to the scripted
// fake model with the real engine, a content-routed script (runs in parallel
// and retries make turn order unreliable), and probes of the host's state.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/store.js';
import { afterEach, beforeAll } from 'vitest';
import { assertBuilt, ChatSession, makeCliHome, runCli, type CliHome } from '../support/cli.js';
import {
  lastToolResult,
  startFakeModelServer,
  type FakeModelServer,
  type RecordedRequest,
  type StaticTurn,
  type Turn,
} from '../support/fake-model-server.js';

/** The host's model credential; it must reach the fake model and nothing else. */
export const REAL_KEY = 'sk-ant-api03-REAL-host-credential-e2e-7f3c9a';

/** The engine's shell tool running `command`, as the scripted model asks for it. */
export function shellTool(
  engine: 'claude-code' | 'lite',
  command: string,
  timeoutMs = 60_000,
): { name: string; input: object } {
  return engine === 'lite'
    ? { name: 'bash', input: { command, timeout_ms: timeoutMs } }
    : { name: 'Bash', input: { command, timeout: timeoutMs, description: 'shell' } };
}

/** Fails loudly when the build or bubblewrap is missing: these tests run the real thing. */
export function assertAgentPrerequisites(): void {
  assertBuilt();
  if (!fs.existsSync('/usr/bin/bwrap') || spawnSync('/usr/bin/bwrap', ['--version']).status !== 0) {
    throw new Error(
      'bubblewrap (/usr/bin/bwrap) is required for the agent e2e tests: apt install bubblewrap',
    );
  }
}

/** A CLI home running a real engine (Claude Code unless extraEnv names another) against the fake model. */
export function makeAgentHome(fake: FakeModelServer, extraEnv: NodeJS.ProcessEnv = {}): CliHome {
  return makeCliHome({
    NANOCLAW_ENGINE: 'claude-code',
    ANTHROPIC_API_KEY: REAL_KEY,
    ANTHROPIC_BASE_URL: fake.url,
    ...extraEnv,
  });
}

/** Every conversation request answered by one function of its content. */
export function routed(route: (request: RecordedRequest) => StaticTurn, turns = 200): Turn[] {
  return Array.from({ length: turns }, () => route);
}

type Block = { type: string; text?: unknown };
type Message = { role: string; content: unknown };

function messagesOf(request: RecordedRequest): Message[] {
  return (request.body as { messages?: Message[] } | null)?.messages ?? [];
}

function blocksOf(content: unknown): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? (content as Block[]) : [];
}

/** The text the last user message carries (the newest prompt), excluding tool results. */
export function lastUserText(request: RecordedRequest): string {
  const last = messagesOf(request)
    .filter((m) => m.role === 'user')
    .at(-1);
  return blocksOf(last?.content)
    .map((b) => (b.type === 'text' && typeof b.text === 'string' ? b.text : ''))
    .join('\n');
}

/** The tool result this request answers (its last message is a tool_result), or undefined. */
export function answeredToolResult(request: RecordedRequest): { text: string; isError: boolean } | undefined {
  const last = messagesOf(request).at(-1);
  if (!last || !blocksOf(last.content).some((b) => b.type === 'tool_result')) return undefined;
  return lastToolResult(request);
}

/** How many tool results the conversation carries so far (the step of a scripted tool sequence). */
export function toolResultCount(request: RecordedRequest): number {
  return messagesOf(request)
    .flatMap((m) => blocksOf(m.content))
    .filter((b) => b.type === 'tool_result').length;
}

/**
 * Names of the live run directories (`data/runs/<run-id>`). A run's directory
 * exists from its start until its process is gone, so sampling it when a model
 * request arrives tells which run made the request.
 */
export function liveRunIds(home: CliHome): string[] {
  const dir = path.join(home.dir, 'data', 'runs');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** Opens the home's database (creating it) for set-up the CLI has no flag for; close it before the host starts. */
export function openHomeStore(home: CliHome): Store {
  fs.mkdirSync(path.join(home.dir, 'store'), { recursive: true });
  return openStore(path.join(home.dir, 'store', 'nanoclaw.db'));
}

export interface AuditLine {
  time: string;
  group: string | null;
  runId: string | null;
  action: string;
  target: string | null;
  reason: string;
}

/** `nanoclaw audit --json`, parsed. */
export async function auditRecords(home: CliHome): Promise<AuditLine[]> {
  const result = await runCli(['audit', '--json'], home.env);
  if (result.code !== 0) throw new Error(`nanoclaw audit failed: ${result.stderr}`);
  return result.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditLine);
}

/** Parses the stdout of a finished `chat --json`. */
/** The chat lines of `chat --json` output, without their outbox ids (tests compare chat and text). */
export function chatLines(stdout: string): Array<{ chat: string; text: string }> {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const { chat, text } = JSON.parse(l) as { chat: string; text: string };
      return { chat, text };
    });
}

export interface AgentFixture {
  /** A fake model answering by content, and a home pointed at it; both cleaned up after the test. */
  setUp(
    route: (request: RecordedRequest) => StaticTurn,
    engine?: 'claude-code' | 'lite',
  ): Promise<{ fake: FakeModelServer; home: CliHome }>;
  /** An open `chat --json` session, killed after the test if still running. */
  chat(env: NodeJS.ProcessEnv): ChatSession;
}

/** Registers the suite's prerequisites check and per-test cleanup; call once per file. */
export function useAgentFixture(): AgentFixture {
  let home: CliHome | undefined;
  let fake: FakeModelServer | undefined;
  let chat: ChatSession | undefined;
  beforeAll(() => assertAgentPrerequisites());
  afterEach(async () => {
    if (chat && chat.child.exitCode === null) chat.child.kill('SIGKILL');
    chat = undefined;
    await fake?.close();
    fake = undefined;
    home?.cleanup();
    home = undefined;
  });
  return {
    async setUp(route, engine = 'claude-code') {
      const server = await startFakeModelServer({ script: routed(route) });
      fake = server;
      home = makeAgentHome(server, { NANOCLAW_ENGINE: engine });
      return { fake: server, home };
    },
    chat(env) {
      chat = new ChatSession(env);
      return chat;
    },
  };
}
