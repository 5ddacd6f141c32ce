// The `claude-code` engine: one Agent SDK query() in streaming-input mode per
// run, so follow-up prompts reach the live Claude Code session and `close`
// ends it after the current turn. Claude Code gets an explicit minimal
// environment: nothing of the runner's own environment leaks into it.

import { accessSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Options, SDKMessage, SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';
import type { StartLine } from '../src/core/protocol.js';
import { archiveHooks } from './archive.js';
import { globalMemory } from './memory.js';
import { isLiteSessionId } from './lite/session.js';
import type { Bridge } from './bridge.js';
import type { HostConnection } from './protocol-io.js';
import { MCP_SERVER_NAME, createNanoclawServer, type McpSdk } from './tools.js';

/** An async iterable of user messages that the runner pushes into and ends on `close`. */
export class PromptStream implements AsyncIterable<SDKUserMessage> {
  private readonly queue: SDKUserMessage[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(text: string): void {
    if (this.ended) return;
    this.queue.push({ type: 'user', message: { role: 'user', content: text }, parent_tool_use_id: null });
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SDKUserMessage> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

export interface ClaudeEnvInput {
  start: StartLine;
  /** The runner's environment; only PATH, LANG and TZ are taken from it. */
  runnerEnv: NodeJS.ProcessEnv;
  modelBridge?: Bridge;
  egressBridge?: Bridge;
}

/** The complete environment of the Claude Code child process. */
export function buildClaudeEnv({
  start,
  runnerEnv,
  modelBridge,
  egressBridge,
}: ClaudeEnvInput): Record<string, string> {
  const env: Record<string, string> = {
    PATH: runnerEnv.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: start.paths.homeDir,
    LANG: runnerEnv.LANG ?? 'C.UTF-8',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
  };
  if (runnerEnv.TZ) env.TZ = runnerEnv.TZ;
  if (modelBridge && start.model) {
    env.ANTHROPIC_BASE_URL = `http://127.0.0.1:${modelBridge.port}`;
    env.ANTHROPIC_API_KEY = start.model.placeholderKey;
  }
  if (egressBridge) {
    const proxy = `http://127.0.0.1:${egressBridge.port}`;
    env.HTTPS_PROXY = proxy;
    env.HTTP_PROXY = proxy;
    env.https_proxy = proxy;
    env.http_proxy = proxy;
    env.NO_PROXY = '127.0.0.1,localhost';
    env.no_proxy = '127.0.0.1,localhost';
  }
  return env;
}

export function buildQueryOptions(
  sdk: McpSdk,
  conn: HostConnection,
  input: ClaudeEnvInput,
  stderr: (data: string) => void,
): Options {
  const { start } = input;
  const append = globalMemory(start);
  return {
    cwd: start.paths.groupDir,
    // A lite session id means the group just switched engines: Claude Code starts afresh.
    resume: start.sessionId && !isLiteSessionId(start.sessionId) ? start.sessionId : undefined,
    ...(start.modelName ? { model: start.modelName } : {}),
    permissionMode: 'bypassPermissions',
    allowDangerouslySkipPermissions: true,
    env: buildClaudeEnv(input),
    // 'project' loads CLAUDE.md of the group folder; 'user' reads ~/.claude (the group's own session dir).
    settingSources: ['project', 'user'],
    systemPrompt: { type: 'preset', preset: 'claude_code', ...(append ? { append } : {}) },
    mcpServers: { [MCP_SERVER_NAME]: createNanoclawServer(sdk, (name, args) => conn.callTool(name, args)) },
    // Compaction drops detail; the whole transcript goes to groups/<folder>/conversations/ first.
    hooks: archiveHooks({
      groupDir: start.paths.groupDir,
      log: (level, msg) => conn.log(level, msg),
      now: () => new Date(),
    }),
    stderr,
  };
}

type ExitCode = number;

/**
 * Claude Code hangs without a word when it cannot write its state, so check
 * first and fail with a message that says which directory is the problem.
 */
export function checkWritableDirs(start: StartLine): string | undefined {
  const claudeDir = path.join(start.paths.homeDir, '.claude');
  for (const dir of [start.paths.homeDir, claudeDir, start.paths.groupDir]) {
    try {
      if (dir === claudeDir) mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return `${dir} is not writable for uid ${process.getuid?.() ?? '?'} (${code})`;
    }
  }
  return undefined;
}

function resultText(message: SDKMessage): string | undefined {
  if (message.type !== 'result' || message.subtype !== 'success') return undefined;
  return message.result;
}

export async function runClaudeEngine(
  conn: HostConnection,
  start: StartLine,
  bridges: { model?: Bridge; egress?: Bridge },
): Promise<ExitCode> {
  const unwritable = checkWritableDirs(start);
  if (unwritable) {
    await conn.send({ type: 'done', sessionId: start.sessionId, error: unwritable });
    return 1;
  }
  const prompts = new PromptStream();
  prompts.push(start.prompt);
  conn.subscribe({ onMessage: (text) => prompts.push(text), onClose: () => prompts.end() });

  let sessionId = start.sessionId;
  // Keeps the last stderr lines of Claude Code for the error message.
  const stderrTail: string[] = [];
  const stderr = (data: string): void => {
    stderrTail.push(data);
    if (stderrTail.length > 20) stderrTail.shift();
    conn.log('debug', `claude: ${data.trimEnd()}`);
  };

  // Imported here, not at the top, so the echo engine runs even where the SDK is absent.
  const sdk = await import('@anthropic-ai/claude-agent-sdk');
  const options = buildQueryOptions(
    sdk,
    conn,
    { start, runnerEnv: process.env, modelBridge: bridges.model, egressBridge: bridges.egress },
    stderr,
  );

  try {
    for await (const message of sdk.query({ prompt: prompts, options })) {
      if (message.type === 'system' && message.subtype === 'init') {
        sessionId = message.session_id;
        continue;
      }
      if (message.type !== 'result') continue;
      sessionId = message.session_id ?? sessionId;
      if (message.subtype !== 'success' || message.is_error) {
        // A failed turn fails the run, so the host can roll back and retry (SPEC §4).
        const detail = message.subtype === 'success' ? message.result : message.subtype;
        prompts.end();
        await conn.send({ type: 'done', sessionId, error: `agent turn failed: ${detail}`.slice(0, 4000) });
        return 1;
      }
      const text = resultText(message);
      // Every turn ends with one output line, an empty one too: the host counts turns by it.
      await conn.send({ type: 'output', text: text && text.trim() !== '' ? text : null, sessionId });
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const tail = stderrTail.join('').trim().slice(-2000);
    await conn.send({ type: 'done', sessionId, error: tail ? `${reason}: ${tail}` : reason });
    return 1;
  }
  await conn.send({ type: 'done', sessionId });
  return 0;
}
