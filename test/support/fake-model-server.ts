// A scripted stand-in for the Anthropic Messages API, so tests can run the real
// runner, SDK and Claude Code without a network or a credential. It records
// every request (method, path, all headers, parsed body) and answers the
// conversation from a script of turns.
//
// Side requests: Claude Code also makes model calls that are not part of the
// conversation (quota probes, title/topic generation, summaries). They are told
// apart by the absence of tools: the agent loop always sends its tool list,
// side requests send none. They get a short generic reply and consume no turn.

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export type RequestKind = 'conversation' | 'side' | 'count_tokens' | 'other';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body, or the raw text when it is not JSON, or undefined when empty. */
  body: unknown;
  kind: RequestKind;
}

export type StaticTurn =
  | { text: string; usage?: Partial<Usage> }
  | { toolUse: { name: string; input: unknown }; text?: string; usage?: Partial<Usage> }
  /** An API error response, e.g. status 400 invalid_request_error (Claude Code does not retry 4xx). */
  | { error: { status: number; type: string; message: string; headers?: Record<string, string> } }
  /** Takes the request and never answers: no status line, no headers (a hung upstream). */
  | { hang: true };
/** A turn computed from the request, e.g. to answer with the last tool result it carries. */
export type Turn = StaticTurn | ((request: RecordedRequest) => StaticTurn);

export const SCRIPT_EXHAUSTED_TEXT = '(script exhausted)';
export const SIDE_REPLY_TEXT = 'ok';

export const DEFAULT_USAGE: Usage = {
  input_tokens: 100,
  output_tokens: 20,
  cache_creation_input_tokens: 10,
  cache_read_input_tokens: 5,
};

export interface FakeModelServerOptions {
  script: Turn[];
  /** TCP on 127.0.0.1 (port 0 by default) or a unix socket. */
  listen?: { port?: number } | { socketPath: string };
  /** Usage reported for every response unless a turn overrides it. */
  usage?: Partial<Usage>;
}

export interface FakeModelServer {
  /** Base URL for ANTHROPIC_BASE_URL (http://127.0.0.1:<port>, or http://localhost for a socket). */
  url: string;
  socketPath?: string;
  requests: RecordedRequest[];
  /** Requests that consumed (or would have consumed) a script turn. */
  conversationRequests(): RecordedRequest[];
  setScript(script: Turn[]): void;
  /** Resolves once `count` conversation requests have arrived. */
  waitForConversationRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  close(): Promise<void>;
}

interface MessagesBody {
  model?: string;
  stream?: boolean;
  tools?: unknown[];
  messages?: Array<{ role: string; content: unknown }>;
}

export function isConversationRequest(body: unknown): boolean {
  const tools = (body as MessagesBody | null)?.tools;
  return Array.isArray(tools) && tools.length > 0;
}

type ContentBlock = { type: string; [key: string]: unknown };

function contentBlocks(content: unknown): ContentBlock[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? (content as ContentBlock[]) : [];
}

/** The text of the last tool_result block in the request, or undefined. */
export function lastToolResult(request: RecordedRequest): { text: string; isError: boolean } | undefined {
  const messages = (request.body as MessagesBody | null)?.messages ?? [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const blocks = contentBlocks(messages[i].content).filter((b) => b.type === 'tool_result');
    const last = blocks.at(-1);
    if (!last) continue;
    const text = contentBlocks(last.content)
      .map((b) => (typeof b.text === 'string' ? b.text : ''))
      .join('');
    return { text, isError: last.is_error === true };
  }
  return undefined;
}

/** All user-visible text of the request's messages, for asserting what the model was shown. */
export function requestText(request: RecordedRequest): string {
  const messages = (request.body as MessagesBody | null)?.messages ?? [];
  return messages
    .flatMap((m) => contentBlocks(m.content))
    .map((b) => {
      if (typeof b.text === 'string') return b.text;
      if (b.type === 'tool_result')
        return contentBlocks(b.content)
          .map((c) => String(c.text ?? ''))
          .join('');
      if (b.type === 'tool_use') return JSON.stringify(b.input);
      return '';
    })
    .join('\n');
}

export async function startFakeModelServer(options: FakeModelServerOptions): Promise<FakeModelServer> {
  let script = [...options.script];
  const requests: RecordedRequest[] = [];
  const baseUsage: Usage = { ...DEFAULT_USAGE, ...options.usage };
  const waiters: Array<() => void> = [];

  const nextTurn = (request: RecordedRequest): StaticTurn => {
    const turn = script.shift();
    if (turn === undefined) return { text: SCRIPT_EXHAUSTED_TEXT };
    return typeof turn === 'function' ? turn(request) : turn;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = undefined;
      if (raw !== '') {
        try {
          body = JSON.parse(raw);
        } catch {
          body = raw;
        }
      }
      const path = (req.url ?? '/').split('?')[0];
      const method = req.method ?? 'GET';
      let kind: RequestKind = 'other';
      // The OpenAI-compatible chat-completions API (the lite engine's other provider) shares the script.
      const chat = method === 'POST' && path === '/v1/chat/completions';
      if ((method === 'POST' && path === '/v1/messages') || chat)
        kind = isConversationRequest(body) ? 'conversation' : 'side';
      else if (method === 'POST' && path === '/v1/messages/count_tokens') kind = 'count_tokens';
      const recorded: RecordedRequest = { method, path, headers: req.headers, body, kind };
      requests.push(recorded);

      if (kind === 'count_tokens') return sendJson(res, 200, { input_tokens: baseUsage.input_tokens });
      if (kind === 'other') return sendJson(res, 200, {});
      const turn: StaticTurn = kind === 'conversation' ? nextTurn(recorded) : { text: SIDE_REPLY_TEXT };
      if ('hang' in turn) {
        // The connection stays open until the client gives up or the server closes.
        for (const w of [...waiters]) w();
        return;
      }
      if ('error' in turn) {
        sendJson(
          res,
          turn.error.status,
          { type: 'error', error: { type: turn.error.type, message: turn.error.message } },
          turn.error.headers,
        );
        for (const w of [...waiters]) w();
        return;
      }
      const model = (body as MessagesBody).model ?? 'claude-fake';
      const usage = { ...baseUsage, ...turn.usage };
      if (chat) sendChatStream(res, turn, model, usage);
      else if ((body as MessagesBody).stream) sendStream(res, turn, model, usage);
      else sendJson(res, 200, messageJson(turn, model, usage));
      if (kind === 'conversation') for (const w of [...waiters]) w();
    });
  });

  const listen = options.listen ?? {};
  let url: string;
  let socketPath: string | undefined;
  if ('socketPath' in listen) {
    socketPath = listen.socketPath;
    rmSync(socketPath, { force: true });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    url = 'http://localhost';
  } else {
    await new Promise<void>((resolve) => server.listen(listen.port ?? 0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const conversationRequests = (): RecordedRequest[] => requests.filter((r) => r.kind === 'conversation');

  return {
    url,
    socketPath,
    requests,
    conversationRequests,
    setScript: (next) => {
      script = [...next];
    },
    waitForConversationRequests: (count, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const seen = conversationRequests();
          if (seen.length < count) return false;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(waiter), 1);
          resolve(seen);
          return true;
        };
        const waiter = (): void => void check();
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(
            new Error(
              `timed out waiting for ${count} conversation requests; got ${conversationRequests().length}`,
            ),
          );
        }, timeoutMs);
        waiters.push(waiter);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const data = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
  });
  res.end(data);
}

function messageId(): string {
  return `msg_fake_${randomBytes(8).toString('hex')}`;
}

function toolUseId(): string {
  return `toolu_fake_${randomBytes(8).toString('hex')}`;
}

type ReplyTurn = Exclude<StaticTurn, { error: unknown } | { hang: true }>;

function contentOf(turn: ReplyTurn): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  if ('toolUse' in turn) {
    if (turn.text) blocks.push({ type: 'text', text: turn.text });
    blocks.push({ type: 'tool_use', id: toolUseId(), name: turn.toolUse.name, input: turn.toolUse.input });
  } else {
    blocks.push({ type: 'text', text: turn.text });
  }
  return blocks;
}

function messageJson(turn: ReplyTurn, model: string, usage: Usage): unknown {
  return {
    id: messageId(),
    type: 'message',
    role: 'assistant',
    model,
    content: contentOf(turn),
    stop_reason: 'toolUse' in turn ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage,
  };
}

function sendStream(res: http.ServerResponse, turn: ReplyTurn, model: string, usage: Usage): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const event = (type: string, data: object): void => {
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  };
  event('message_start', {
    message: {
      id: messageId(),
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { ...usage, output_tokens: 1 },
    },
  });
  contentOf(turn).forEach((block, index) => {
    if (block.type === 'text') {
      event('content_block_start', { index, content_block: { type: 'text', text: '' } });
      event('content_block_delta', { index, delta: { type: 'text_delta', text: block.text } });
    } else {
      event('content_block_start', {
        index,
        content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
      });
      event('content_block_delta', {
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) },
      });
    }
    event('content_block_stop', { index });
  });
  event('message_delta', {
    delta: { stop_reason: 'toolUse' in turn ? 'tool_use' : 'end_turn', stop_sequence: null },
    usage: { output_tokens: usage.output_tokens },
  });
  event('message_stop', {});
  res.end();
}

/** A chat-completions answer as an OpenAI-compatible server streams it (text, tool calls, usage, [DONE]). */
function sendChatStream(res: http.ServerResponse, turn: ReplyTurn, model: string, usage: Usage): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const id = `chatcmpl-${randomBytes(6).toString('hex')}`;
  const chunk = (choice: object | null, extra: object = {}): void => {
    const data = {
      id,
      object: 'chat.completion.chunk',
      model,
      choices: choice ? [{ index: 0, ...choice }] : [],
      ...extra,
    };
    res.write(`data: ${JSON.stringify(data)}\n\n`);
  };
  chunk({ delta: { role: 'assistant', content: '' }, finish_reason: null });
  const text = 'toolUse' in turn ? turn.text : turn.text;
  if (text) {
    // Split in two, as real servers stream it.
    const half = Math.ceil(text.length / 2);
    chunk({ delta: { content: text.slice(0, half) }, finish_reason: null });
    chunk({ delta: { content: text.slice(half) }, finish_reason: null });
  }
  if ('toolUse' in turn) {
    const args = JSON.stringify(turn.toolUse.input);
    const half = Math.ceil(args.length / 2);
    chunk({
      delta: {
        tool_calls: [
          {
            index: 0,
            id: `call_${randomBytes(6).toString('hex')}`,
            type: 'function',
            function: { name: turn.toolUse.name, arguments: args.slice(0, half) },
          },
        ],
      },
      finish_reason: null,
    });
    chunk({
      delta: { tool_calls: [{ index: 0, function: { arguments: args.slice(half) } }] },
      finish_reason: null,
    });
  }
  chunk({ delta: {}, finish_reason: 'toolUse' in turn ? 'tool_calls' : 'stop' });
  chunk(null, {
    usage: {
      prompt_tokens: usage.input_tokens,
      completion_tokens: usage.output_tokens,
      total_tokens: usage.input_tokens + usage.output_tokens,
    },
  });
  res.write('data: [DONE]\n\n');
  res.end();
}
