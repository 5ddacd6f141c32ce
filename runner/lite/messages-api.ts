// A small Messages API client for the lite engine: one streamed request over
// node:http to the broker's model socket (no fetch, no SDK — each costs tens of
// MB per run), retried with backoff when the model is overloaded, rate-limited
// or unreachable. The broker swaps the placeholder key for the real credential.

import http from 'node:http';
import { readEventStream } from './sse.js';

export type TextBlock = { type: 'text'; text: string; cache_control?: CacheControl };
export type ToolUseBlock = { type: 'tool_use'; id: string; name: string; input: unknown };
export type ImageBlock = {
  type: 'image';
  source: { type: 'base64'; media_type: string; data: string };
};
export type DocumentBlock = {
  type: 'document';
  source: { type: 'base64'; media_type: 'application/pdf'; data: string };
};
export type ToolResultBlock = {
  type: 'tool_result';
  tool_use_id: string;
  content: string | Array<TextBlock | ImageBlock | DocumentBlock>;
  is_error?: boolean;
};
/** Blocks the engine does not act on (thinking, …) are kept as they came, for the next request. */
export type OtherBlock = { type: string; [key: string]: unknown };
export type ContentBlock = TextBlock | ToolUseBlock | ImageBlock | DocumentBlock | ToolResultBlock;
export type CacheControl = { type: 'ephemeral' };

export interface Message {
  role: 'user' | 'assistant';
  content: string | Array<ContentBlock | OtherBlock>;
}

export interface ToolDefinition {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
  cache_control?: CacheControl;
}

/** A message's content as blocks: a plain string is one text block. */
export function contentBlocks(message: Message): Array<ContentBlock | OtherBlock> {
  return typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
}

export interface MessagesRequest {
  model: string;
  max_tokens: number;
  system: TextBlock[];
  tools: ToolDefinition[];
  messages: Message[];
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

export interface AssistantReply {
  content: Array<ContentBlock | OtherBlock>;
  stopReason: string | null;
  usage: Usage;
}

/** How the runner reaches the model: the broker's unix socket and the run's placeholder key. */
export interface ModelEndpoint {
  socketPath: string;
  apiKey: string;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 1000, maxDelayMs: 30_000 };

export class ModelApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const ANTHROPIC_VERSION = '2023-06-01';
const NETWORK_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 529 || status >= 500;
}

/**
 * Adds the prompt-cache breakpoints without touching the caller's data: the
 * end of the system prompt, the last tool, and the last block of the last
 * message (so the next request reads the whole prefix from the cache).
 */
export function withCacheControl(request: MessagesRequest): MessagesRequest {
  const mark: CacheControl = { type: 'ephemeral' };
  const system = request.system.map((b, i) =>
    i === request.system.length - 1 ? { ...b, cache_control: mark } : b,
  );
  const tools = request.tools.map((t, i) =>
    i === request.tools.length - 1 ? { ...t, cache_control: mark } : t,
  );
  const messages = request.messages.map((m, i) => {
    if (i !== request.messages.length - 1) return m;
    const blocks = contentBlocks(m);
    return {
      ...m,
      content: blocks.map((b, j) => (j === blocks.length - 1 ? { ...b, cache_control: mark } : b)),
    };
  });
  return { ...request, system, tools, messages };
}

/** One streamed request; rejects with a ModelApiError that says whether a retry may help. */
export function streamMessage(endpoint: ModelEndpoint, request: MessagesRequest): Promise<AssistantReply> {
  const body = JSON.stringify({ ...withCacheControl(request), stream: true });
  return new Promise<AssistantReply>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: endpoint.socketPath,
        method: 'POST',
        path: '/v1/messages',
        headers: {
          host: 'localhost',
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'anthropic-version': ANTHROPIC_VERSION,
          'x-api-key': endpoint.apiKey,
          accept: 'text/event-stream',
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => reject(httpError(status, Buffer.concat(chunks).toString('utf8'), res.headers)));
          res.on('error', (err) => reject(networkError(err)));
          return;
        }
        const reply = new ReplyBuilder();
        readEventStream(
          res,
          { apply: ({ event, data }) => reply.apply(event, data), finish: () => reply.finish() },
          { resolve, reject, onError: networkError },
        );
      },
    );
    req.on('error', (err) => reject(networkError(err)));
    req.end(body);
  });
}

export type SendRequest = (endpoint: ModelEndpoint, request: MessagesRequest) => Promise<AssistantReply>;

export interface RetryDeps {
  sleep: (ms: number) => Promise<void>;
  onRetry?: (error: ModelApiError, attempt: number, delayMs: number) => void;
  policy?: RetryPolicy;
  /** The provider's transport; the Messages API by default. */
  send?: SendRequest;
}

/** streamMessage with exponential backoff (honouring retry-after) on retryable failures. */
export async function streamWithRetry(
  endpoint: ModelEndpoint,
  request: MessagesRequest,
  deps: RetryDeps,
): Promise<AssistantReply> {
  const policy = deps.policy ?? DEFAULT_RETRY;
  for (let attempt = 1; ; attempt++) {
    try {
      return await (deps.send ?? streamMessage)(endpoint, request);
    } catch (err) {
      const error = err instanceof ModelApiError ? err : new ModelApiError(String(err), null, false);
      if (!error.retryable || attempt >= policy.maxAttempts) throw error;
      const backoffMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delayMs = Math.min(policy.maxDelayMs, Math.max(backoffMs, error.retryAfterMs ?? 0));
      deps.onRetry?.(error, attempt, delayMs);
      await deps.sleep(delayMs);
    }
  }
}

function httpError(status: number, text: string, headers: http.IncomingHttpHeaders): ModelApiError {
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { error?: { type?: string; message?: string } };
    if (parsed.error?.message) message = `${parsed.error.type ?? 'error'}: ${parsed.error.message}`;
  } catch {
    // Not JSON: the raw text (cut) is the best description there is.
  }
  const retryAfterS = Number(headers['retry-after']);
  return new ModelApiError(
    `model request failed (HTTP ${status}): ${message}`,
    status,
    isRetryableStatus(status),
    Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : undefined,
  );
}

function networkError(err: Error): ModelApiError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return new ModelApiError(
    `model unreachable: ${err.message}`,
    null,
    NETWORK_ERRORS.has(code) || code === '',
  );
}

type StreamBlock = (ContentBlock | OtherBlock) & { partialJson?: string };

/** Folds the stream's events into one assistant message. */
export class ReplyBuilder {
  private readonly blocks: StreamBlock[] = [];
  private stopReason: string | null = null;
  private usage: Usage = { input_tokens: 0, output_tokens: 0 };
  private stopped = false;

  apply(event: string, data: string): void {
    if (event === 'ping') return;
    const payload = JSON.parse(data) as Record<string, unknown>;
    const type = (payload.type as string | undefined) ?? event;
    switch (type) {
      case 'message_start': {
        const message = payload.message as { usage?: Usage } | undefined;
        if (message?.usage) this.usage = { ...message.usage };
        return;
      }
      case 'content_block_start': {
        const block = { ...(payload.content_block as StreamBlock) };
        if (block.type === 'tool_use') {
          block.partialJson = '';
        }
        this.blocks[payload.index as number] = block;
        return;
      }
      case 'content_block_delta': {
        const block = this.blocks[payload.index as number] as Record<string, unknown> | undefined;
        const delta = payload.delta as Record<string, unknown>;
        if (!block) return;
        if (delta.type === 'text_delta') block.text = String(block.text ?? '') + String(delta.text);
        else if (delta.type === 'input_json_delta')
          block.partialJson = String(block.partialJson ?? '') + String(delta.partial_json);
        else if (delta.type === 'thinking_delta')
          block.thinking = String(block.thinking ?? '') + String(delta.thinking);
        else if (delta.type === 'signature_delta') block.signature = delta.signature;
        return;
      }
      case 'content_block_stop': {
        const block = this.blocks[payload.index as number];
        if (block && block.type === 'tool_use') {
          const json = block.partialJson ?? '';
          delete block.partialJson;
          (block as ToolUseBlock).input = json.trim() === '' ? {} : (JSON.parse(json) as unknown);
        }
        return;
      }
      case 'message_delta': {
        const delta = payload.delta as { stop_reason?: string | null } | undefined;
        if (delta?.stop_reason !== undefined) this.stopReason = delta.stop_reason;
        const usage = payload.usage as Partial<Usage> | undefined;
        if (usage) this.usage = { ...this.usage, ...usage };
        return;
      }
      case 'message_stop':
        this.stopped = true;
        return;
      case 'error': {
        const error = payload.error as { type?: string; message?: string } | undefined;
        const kind = error?.type ?? 'error';
        throw new ModelApiError(
          `model stream failed: ${kind}: ${error?.message ?? ''}`,
          null,
          kind === 'overloaded_error' || kind === 'api_error' || kind === 'rate_limit_error',
        );
      }
      default:
        return;
    }
  }

  finish(): AssistantReply {
    if (!this.stopped) throw new ModelApiError('model stream ended before message_stop', null, true);
    // A tool call cut off by max_tokens never got its content_block_stop: it cannot be run, and
    // the API would refuse it in the next request's history.
    const content = this.blocks.filter((b) => b !== undefined && b.partialJson === undefined);
    return { content, stopReason: this.stopReason, usage: this.usage };
  }
}
