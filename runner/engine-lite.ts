// The `lite` engine: a small agent loop in the runner process itself — the
// Messages API streamed over node:http to the broker's model socket, local
// tools (bash, read, write, edit, glob, grep) and the nanoclaw tools through
// the host. About a sixth of Claude Code's memory per run; same protocol, same
// sandbox, same broker.

import path from 'node:path';
import type { StartLine } from '../src/core/protocol.js';
import type { Bridge } from './bridge.js';
import { globalMemory, readMemory } from './memory.js';
import {
  DEFAULT_LIMITS,
  LOCAL_TOOL_DEFINITIONS,
  LOCAL_TOOL_NAMES,
  killJobs,
  runLocalTool,
  type LocalToolContext,
  type ToolResult,
} from './lite/local-tools.js';
import {
  ModelApiError,
  streamWithRetry,
  type ContentBlock,
  type Message,
  type MessagesRequest,
  type ModelEndpoint,
  type OtherBlock,
  type TextBlock,
  type ToolResultBlock,
  type ToolUseBlock,
} from './lite/messages-api.js';
import {
  archiveHistory,
  contextTokens,
  shouldCompact,
  summaryRequest,
  withSummary,
} from './lite/compaction.js';
import { isNanoclawTool, nanoclawToolDefinitions } from './lite/nanoclaw-tools.js';
import { streamChatCompletion } from './lite/openai-api.js';
import { WEB_FETCH_DEFAULTS, WEB_FETCH_DEFINITION, webFetch } from './lite/web-fetch.js';
import { loadSession, newSessionId, saveSession, type LiteSession } from './lite/session.js';
import { outcomeText, type HostConnection } from './protocol-io.js';

export const DEFAULT_LITE_MODEL = 'claude-sonnet-4-5';
const MAX_OUTPUT_TOKENS = 8192;
/** Model calls in one turn before the engine gives up; a loop that long is stuck. */
const MAX_STEPS_PER_TURN = 100;

type ExitCode = number;

/** The system prompt: who the agent is and where, then the group's and the shared memory. */
export function buildSystemPrompt(start: StartLine): TextBlock[] {
  const parts = [
    `You are ${start.assistantName}, a personal assistant in the chat "${start.group.name}", ` +
      'running in a sandbox. Your final answer of each turn is sent to the chat as a message; ' +
      'wrap notes that are not for the chat in <internal>…</internal>. Use send_message for updates ' +
      'while you keep working. Keep chat answers short and plain (no Markdown headings or tables).',
    `Your working folder is ${start.paths.groupDir}; files you keep there persist between conversations. ` +
      `Relative paths in tools start there. Today is ${new Date().toISOString().slice(0, 10)}.`,
  ];
  const groupMemory = readMemory(path.join(start.paths.groupDir, 'CLAUDE.md'));
  if (groupMemory) parts.push(`<memory file="CLAUDE.md">\n${groupMemory}\n</memory>`);
  const shared = globalMemory(start);
  if (shared) parts.push(`<memory file="global/CLAUDE.md">\n${shared}\n</memory>`);
  return [{ type: 'text', text: parts.join('\n\n') }];
}

/** The bash tool's environment: nothing of the runner's, no key, the egress proxy if the group has one. */
export function buildToolEnv(
  start: StartLine,
  runnerEnv: NodeJS.ProcessEnv,
  egress?: Bridge,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: runnerEnv.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: start.paths.homeDir,
    LANG: runnerEnv.LANG ?? 'C.UTF-8',
  };
  if (runnerEnv.TZ) env.TZ = runnerEnv.TZ;
  if (egress) {
    const proxy = `http://127.0.0.1:${egress.port}`;
    for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) env[name] = proxy;
    env.NO_PROXY = '127.0.0.1,localhost';
    env.no_proxy = '127.0.0.1,localhost';
  }
  return env;
}

function replyText(content: Array<ContentBlock | OtherBlock>): string {
  return content
    .filter((b): b is TextBlock => b.type === 'text')
    .map((b) => b.text)
    .join('\n')
    .trim();
}

/** The history up to the end of its last finished turn (an assistant message that asks for no tool). */
export function completeTurns(messages: Message[]): Message[] {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    const asksForTool = typeof m.content !== 'string' && m.content.some((b) => b.type === 'tool_use');
    if (m.role === 'assistant' && !asksForTool) return messages.slice(0, i + 1);
  }
  return [];
}

export interface LiteDeps {
  sleep: (ms: number) => Promise<void>;
  runnerEnv: NodeJS.ProcessEnv;
}

export async function runLiteEngine(
  conn: HostConnection,
  start: StartLine,
  bridges: { egress?: Bridge },
  deps: LiteDeps = { sleep: (ms) => new Promise((r) => setTimeout(r, ms)), runnerEnv: process.env },
): Promise<ExitCode> {
  if (!start.model) {
    await conn.send({
      type: 'done',
      sessionId: start.sessionId,
      error: 'the lite engine needs the model broker',
    });
    return 1;
  }
  const endpoint: ModelEndpoint = { socketPath: start.model.socketPath, apiKey: start.model.placeholderKey };
  const homeDir = start.paths.homeDir;

  let session: LiteSession | undefined;
  try {
    session = start.sessionId ? loadSession(homeDir, start.sessionId) : undefined;
  } catch (err) {
    conn.log('warn', `starting a new session: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (start.sessionId && !session) conn.log('info', `no lite session ${start.sessionId}; starting a new one`);
  session ??= { id: newSessionId(), messages: [] };
  // A run killed mid-turn left a prompt without its answer; that turn is retried as a whole.
  session.messages = completeTurns(session.messages);
  const sessionId = session.id;

  const toolCtx: LocalToolContext = {
    cwd: start.paths.groupDir,
    env: buildToolEnv(start, deps.runnerEnv, bridges.egress),
    jobs: new Map(),
    limits: DEFAULT_LIMITS,
  };
  const tools = [...LOCAL_TOOL_DEFINITIONS, WEB_FETCH_DEFINITION, ...nanoclawToolDefinitions()];
  const model = start.modelName ?? DEFAULT_LITE_MODEL;

  const runTool = async (block: ToolUseBlock): Promise<ToolResult> => {
    if (LOCAL_TOOL_NAMES.has(block.name)) return runLocalTool(toolCtx, block.name, block.input);
    if (block.name === WEB_FETCH_DEFINITION.name) {
      const url = (block.input as { url?: unknown } | null)?.url;
      if (typeof url !== 'string') return { content: 'web_fetch: "url" must be a string', isError: true };
      return webFetch(url, { ...WEB_FETCH_DEFAULTS, egressSocket: start.egress?.socketPath });
    }
    if (isNanoclawTool(block.name)) {
      const { text, isError } = outcomeText(await conn.callTool(block.name, block.input));
      return isError ? { content: text, isError } : { content: text };
    }
    return { content: `there is no tool "${block.name}"`, isError: true };
  };

  // One prompt in, one output line out (the host counts turns by it).
  const runTurn = async (current: LiteSession, prompt: string): Promise<string | null> => {
    const before = { messages: [...current.messages], contextTokens: current.contextTokens };
    try {
      return await runSteps(current, prompt);
    } catch (err) {
      // The host rolls the turn back and retries it (SPEC §4): so does the session.
      current.messages = before.messages;
      current.contextTokens = before.contextTokens;
      saveSession(homeDir, current);
      throw err;
    }
  };

  const retry = {
    send: start.model.api === 'openai' ? streamChatCompletion : undefined,
    sleep: deps.sleep,
    onRetry: (error: ModelApiError, attempt: number, delayMs: number) =>
      conn.log('warn', `${error.message}; retry ${attempt} in ${delayMs} ms`),
  };
  const requestFor = (messages: Message[]): MessagesRequest => ({
    model,
    max_tokens: MAX_OUTPUT_TOKENS,
    system: buildSystemPrompt(start),
    tools,
    messages,
  });

  /**
   * Replaces the turns before `turnStart` by a model-written summary, after
   * archiving them. A failed summary only logs: the turn goes on uncompacted.
   */
  const compact = async (current: LiteSession, turnStart: number): Promise<boolean> => {
    const older = current.messages.slice(0, turnStart);
    try {
      const file = archiveHistory(start.paths.groupDir, older, new Date());
      if (file) conn.log('info', `archived the conversation before compaction: ${file}`);
    } catch (err) {
      conn.log('warn', `could not archive the conversation before compaction: ${String(err)}`);
    }
    let summary = '';
    try {
      summary = replyText(
        (await streamWithRetry(endpoint, summaryRequest(requestFor(older), older), retry)).content,
      );
    } catch (err) {
      conn.log(
        'warn',
        `compaction failed, going on without it: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (summary === '') return false;
    current.messages = withSummary(summary, current.messages.slice(turnStart));
    current.contextTokens = undefined;
    saveSession(homeDir, current);
    conn.log('info', `compacted ${older.length} messages into a summary`);
    return true;
  };

  const runSteps = async (current: LiteSession, prompt: string): Promise<string | null> => {
    let turnStart = current.messages.length;
    // One attempt per turn: a summary that failed is not retried before every step.
    let compactionTried = false;
    current.messages.push({ role: 'user', content: [{ type: 'text', text: prompt }] });
    saveSession(homeDir, current);
    for (let step = 0; step < MAX_STEPS_PER_TURN; step++) {
      if (!compactionTried && turnStart > 0 && shouldCompact(current.contextTokens, start.compaction)) {
        compactionTried = true;
        if (await compact(current, turnStart)) turnStart = 0;
      }
      const reply = await streamWithRetry(endpoint, requestFor(current.messages), retry);
      current.contextTokens = contextTokens(reply.usage);
      // The API refuses an empty assistant message in a later request's history.
      const content =
        reply.content.length > 0 ? reply.content : [{ type: 'text' as const, text: '(no reply)' }];
      current.messages.push({ role: 'assistant', content });
      // Every complete tool call is run, whatever the stop reason: a tool_use left without its
      // result would make the next request invalid.
      const toolUses = reply.content.filter((b): b is ToolUseBlock => b.type === 'tool_use');
      if (toolUses.length === 0) {
        saveSession(homeDir, current);
        const text = replyText(reply.content);
        return text === '' ? null : text;
      }
      const results: ToolResultBlock[] = [];
      for (const use of toolUses) {
        const result = await runTool(use);
        results.push({
          type: 'tool_result',
          tool_use_id: use.id,
          content: result.content,
          ...(result.isError ? { is_error: true } : {}),
        });
      }
      current.messages.push({ role: 'user', content: results });
      saveSession(homeDir, current);
    }
    throw new Error(`the agent made ${MAX_STEPS_PER_TURN} model calls in one turn without finishing`);
  };

  try {
    for await (const prompt of conn.prompts(start.prompt)) {
      const text = await runTurn(session, prompt);
      await conn.send({ type: 'output', text, sessionId });
    }
  } catch (err) {
    const reason = err instanceof ModelApiError || err instanceof Error ? err.message : String(err);
    await conn.send({ type: 'done', sessionId, error: `agent turn failed: ${reason}`.slice(0, 4000) });
    return 1;
  } finally {
    killJobs(toolCtx);
  }
  await conn.send({ type: 'done', sessionId });
  return 0;
}
