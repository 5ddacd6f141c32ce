// Token usage extraction from Messages API responses (SPEC §11). The proxy feeds
// every response chunk here as it passes it on, so parsing must be incremental:
// the client never waits for us, and chunk boundaries can fall anywhere (inside
// a UTF-8 sequence, a line, or a `\r\n`).

import type { TokenUsage } from '../core/types.js';

/** Largest JSON body (or single SSE line) we keep a copy of for parsing; beyond it usage is skipped. */
export const MAX_USAGE_PARSE_BYTES = 4 * 1024 * 1024;

export interface UsageExtractor {
  push(chunk: Buffer): void;
  /** Usage seen in the whole response, or null when it carried none (errors, count_tokens). */
  finish(): TokenUsage | null;
}

/** Field-wise accumulation: later reports (message_delta) override earlier ones (message_start). */
interface PartialUsage {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
}

function readCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}

/** Merges an API `usage` object into the accumulator; returns false if it was not an object. */
function mergeApiUsage(into: PartialUsage, usage: unknown): boolean {
  if (typeof usage !== 'object' || usage === null) return false;
  const u = usage as Record<string, unknown>;
  const fields: Array<[keyof PartialUsage, string]> = [
    ['inputTokens', 'input_tokens'],
    ['outputTokens', 'output_tokens'],
    ['cacheReadTokens', 'cache_read_input_tokens'],
    ['cacheWriteTokens', 'cache_creation_input_tokens'],
  ];
  for (const [ours, theirs] of fields) {
    const n = readCount(u[theirs]);
    if (n !== undefined) into[ours] = n;
  }
  return true;
}

/**
 * Merges an OpenAI-compatible `usage` object (prompt_tokens, completion_tokens,
 * prompt_tokens_details.cached_tokens); returns false when it is not one.
 */
function mergeOpenAiUsage(into: PartialUsage, usage: unknown): boolean {
  if (typeof usage !== 'object' || usage === null) return false;
  const u = usage as Record<string, unknown>;
  const prompt = readCount(u.prompt_tokens);
  const completion = readCount(u.completion_tokens);
  if (prompt === undefined && completion === undefined) return false;
  const details = u.prompt_tokens_details as Record<string, unknown> | null | undefined;
  const cached = readCount(details?.cached_tokens) ?? 0;
  // prompt_tokens includes the cached ones; ours are counted apart, as the Messages API does.
  if (prompt !== undefined) into.inputTokens = Math.max(0, prompt - cached);
  if (completion !== undefined) into.outputTokens = completion;
  into.cacheReadTokens = cached;
  return true;
}

function complete(partial: PartialUsage, seen: boolean): TokenUsage | null {
  if (!seen) return null;
  return {
    inputTokens: partial.inputTokens ?? 0,
    outputTokens: partial.outputTokens ?? 0,
    cacheReadTokens: partial.cacheReadTokens ?? 0,
    cacheWriteTokens: partial.cacheWriteTokens ?? 0,
  };
}

/** Parses a whole (non-streaming) Messages API JSON body. */
export function usageFromJsonBody(body: string): TokenUsage | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const partial: PartialUsage = {};
  const usage = (parsed as Record<string, unknown>).usage;
  return complete(partial, mergeOpenAiUsage(partial, usage) || mergeApiUsage(partial, usage));
}

/**
 * Incremental SSE parser that only looks at `message_start` and `message_delta`
 * events. Other events are skipped without JSON-parsing them, and an overlong
 * line is dropped rather than buffered without bound.
 */
export function createSseUsageExtractor(): UsageExtractor {
  const decoder = new TextDecoder('utf-8');
  const partial: PartialUsage = {};
  let seen = false;
  let pendingLine = '';
  let skippingLongLine = false;
  let dataLines: string[] = [];
  // A lone `\r` at a chunk end may be the first half of `\r\n`.
  let lastWasCr = false;

  const dispatch = (): void => {
    if (dataLines.length === 0) return;
    const data = dataLines.join('\n');
    dataLines = [];
    // Cheap pre-filter: only two event types carry usage (and an OpenAI-compatible stream's usage chunk).
    const openAi = data.includes('"prompt_tokens"');
    if (!openAi && !data.includes('"message_start"') && !data.includes('"message_delta"')) return;
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof event !== 'object' || event === null) return;
    const e = event as Record<string, unknown>;
    if (openAi && mergeOpenAiUsage(partial, e.usage)) {
      seen = true;
    } else if (e.type === 'message_start') {
      const message = e.message as Record<string, unknown> | undefined;
      if (message && mergeApiUsage(partial, message.usage)) seen = true;
    } else if (e.type === 'message_delta') {
      if (mergeApiUsage(partial, e.usage)) seen = true;
    }
  };

  const onLine = (line: string): void => {
    if (line === '') {
      dispatch();
      return;
    }
    if (line.startsWith('data:')) {
      const value = line.slice(5);
      dataLines.push(value.startsWith(' ') ? value.slice(1) : value);
    }
    // `event:`, `id:`, `retry:` and comments carry nothing we need: the JSON has its own `type`.
  };

  const endLine = (tail: string): void => {
    const line = pendingLine + tail;
    pendingLine = '';
    if (skippingLongLine) skippingLongLine = false;
    else onLine(line);
  };

  const feedText = (text: string): void => {
    let i = 0;
    if (lastWasCr && text.length > 0) {
      if (text.charCodeAt(0) === 10) i = 1;
      lastWasCr = false;
    }
    let start = i;
    for (; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      endLine(text.slice(start, i));
      if (ch === 13) {
        if (i + 1 >= text.length) lastWasCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    if (start >= text.length || skippingLongLine) return;
    pendingLine += text.slice(start);
    if (pendingLine.length > MAX_USAGE_PARSE_BYTES) {
      pendingLine = '';
      dataLines = [];
      skippingLongLine = true;
    }
  };

  return {
    push(chunk) {
      feedText(decoder.decode(chunk, { stream: true }));
    },
    finish() {
      feedText(decoder.decode());
      if (pendingLine !== '' && !skippingLongLine) onLine(pendingLine);
      pendingLine = '';
      dispatch();
      return complete(partial, seen);
    },
  };
}

/** Keeps a bounded copy of a JSON body and parses it at the end. */
export function createJsonUsageExtractor(): UsageExtractor {
  const chunks: Buffer[] = [];
  let size = 0;
  let overflowed = false;
  return {
    push(chunk) {
      if (overflowed) return;
      size += chunk.length;
      if (size > MAX_USAGE_PARSE_BYTES) {
        overflowed = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    },
    finish() {
      if (overflowed) return null;
      return usageFromJsonBody(Buffer.concat(chunks).toString('utf8'));
    },
  };
}

/** Picks the parser from the response's content type; null when the body cannot carry usage. */
export function createUsageExtractor(contentType: string | undefined): UsageExtractor | null {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'text/event-stream') return createSseUsageExtractor();
  if (type === 'application/json' || type.endsWith('+json')) return createJsonUsageExtractor();
  return null;
}

/**
 * Output tokens charged for a response we could not read to its end when its
 * request named no `max_tokens` (or was too large to keep): the most any current
 * model writes in one answer, so an estimate never undercounts (SPEC §10.10).
 */
export const FALLBACK_MAX_OUTPUT_TOKENS = 64_000;

/** Bytes of request body per input token assumed when no usage was seen; low, so the estimate stays high. */
const BYTES_PER_TOKEN_ESTIMATE = 2;

export interface RequestSniffer {
  push(chunk: Buffer): void;
  /** The request's top-level `max_tokens`, or null when absent or unreadable. */
  maxTokens(): number | null;
  /** Whether the request asked for a streamed answer (top-level `"stream": true`). */
  streaming(): boolean;
  bytes(): number;
}

/** Longest key or number we keep while scanning; `max_tokens` and any real count fit. */
const MAX_SCANNED_TOKEN_CHARS = 16;

/**
 * Reads a request body as it streams past and picks out the top-level
 * `max_tokens` with a tiny JSON scanner, in constant memory: bodies are large
 * (the whole conversation) and a small board runs several at once.
 */
export function createRequestSniffer(): RequestSniffer {
  let size = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let expectKey = false;
  let text = '';
  let lastKey: string | null = null;
  let valueOf: string | null = null;
  let digits = '';
  let found: number | null = null;
  let stream = false;
  let broken = false;

  // The last one wins, as in the upstream's parser: a decoy earlier in the body must not lower the estimate.
  const endNumber = (): void => {
    if (digits !== '') found = Number(digits);
    digits = '';
    valueOf = null;
  };

  const feed = (code: number): void => {
    if (inString) {
      if (escaped) escaped = false;
      else if (code === 0x5c) escaped = true;
      else if (code === 0x22) {
        inString = false;
        if (depth === 1 && expectKey) lastKey = text;
      } else if (text.length <= MAX_SCANNED_TOKEN_CHARS) text += String.fromCharCode(code);
      return;
    }
    if (valueOf === 'max_tokens' && code >= 0x30 && code <= 0x39 && depth === 1) {
      if (digits.length <= MAX_SCANNED_TOKEN_CHARS) digits += String.fromCharCode(code);
      return;
    }
    if (digits !== '') {
      // `8e3` or `1.5`: a count we cannot read exactly is no count at all (the estimate falls back high).
      if (code === 0x2e || code === 0x45 || code === 0x65) broken = true;
      endNumber();
    }
    switch (code) {
      case 0x22:
        inString = true;
        text = '';
        break;
      case 0x7b:
      case 0x5b:
        depth++;
        if (depth === 1) expectKey = code === 0x7b;
        else if (depth === 2) valueOf = null;
        break;
      case 0x7d:
      case 0x5d:
        depth--;
        if (depth < 0) broken = true;
        break;
      case 0x3a:
        if (depth === 1) {
          expectKey = false;
          valueOf = lastKey;
        }
        break;
      case 0x2c:
        if (depth === 1) {
          expectKey = true;
          valueOf = null;
        }
        break;
      default:
        // `true` or `false` after "stream": the first letter says which; the last one wins.
        if (depth === 1 && valueOf === 'stream' && (code === 0x74 || code === 0x66)) stream = code === 0x74;
        // Whitespace, literals and the rest of other values: nothing to keep.
        if (depth === 1 && code > 0x20 && valueOf !== null) valueOf = null;
    }
  };

  return {
    push(chunk) {
      size += chunk.length;
      if (broken) return;
      for (const byte of chunk) feed(byte);
    },
    maxTokens() {
      if (digits !== '') endNumber();
      return broken ? null : found;
    },
    streaming: () => !broken && stream,
    bytes: () => size,
  };
}

/** Usage to charge for an answer cut short: what was seen, topped up to the most it could have cost. */
export function estimateUsage(seen: TokenUsage | null, request: RequestSniffer): TokenUsage {
  return {
    inputTokens: seen?.inputTokens ?? Math.ceil(request.bytes() / BYTES_PER_TOKEN_ESTIMATE),
    outputTokens: Math.max(seen?.outputTokens ?? 0, request.maxTokens() ?? FALLBACK_MAX_OUTPUT_TOKENS),
    cacheReadTokens: seen?.cacheReadTokens ?? 0,
    cacheWriteTokens: seen?.cacheWriteTokens ?? 0,
  };
}
