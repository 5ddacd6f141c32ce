// The per-run credential proxy (ARCHITECTURE "Broker"). The sandbox only ever holds
// a worthless placeholder key; this plain-HTTP reverse proxy on the run's
// model.sock swaps it for the real credential, lets through only the Messages API
// at its canonical path, enforces the group's daily token budget per request,
// streams answers back unbuffered with the credential scrubbed out of them, and
// counts tokens on the way — reading an answer to its end even when the sandbox
// hangs up, so usage is never undercounted (SPEC §10.1, §10.10, §11).

import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { AuditReason, AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import type { TokenUsage } from '../core/types.js';
import { keysEqual, presentedKey } from './credential.js';
import {
  createRefusalCounter,
  DEFAULT_MAX_CONNECTIONS_PER_RUN,
  guardServer,
  type RefusalCounter,
} from './guard.js';
import { classifyModelError, parseErrorBody, type ModelError, type ModelFailure } from './model-errors.js';
import { createSecretScrubber, type SecretScrubber } from './scrub.js';
import { closeUnixServer, listenOnUnixSocket, trackSockets } from './socket.js';
import {
  createRequestSniffer,
  createUsageExtractor,
  estimateUsage,
  type RequestSniffer,
  type UsageExtractor,
} from './usage.js';

/** Beta flag the API requires for OAuth bearer tokens; merged into the client's betas. */
export const OAUTH_BETA = 'oauth-2025-04-20';

/** The only upstream paths a sandbox may reach. */
export const ALLOWED_MODEL_PATHS: ReadonlySet<string> = new Set([
  '/v1/messages',
  '/v1/messages/count_tokens',
]);

/**
 * The only query strings, byte for byte; Claude Code sends `?beta=true`. Anything
 * else is refused rather than forwarded, so an upstream or gateway that
 * normalises URLs can never be steered by what follows the `?`.
 */
export const ALLOWED_MODEL_QUERIES: ReadonlySet<string> = new Set(['', 'beta=true']);

/** The one path that spends tokens, and so the one the budget gates. */
const MESSAGES_PATH = '/v1/messages';

/**
 * The API a run's model socket speaks. `openai` (the lite engine's
 * OpenAI-compatible provider) allows only chat completions, and sends the
 * provider's key as a bearer token.
 */
export type ModelApi = 'anthropic' | 'openai';

export const CHAT_COMPLETIONS_PATH = '/v1/chat/completions';

/** The path that spends tokens for each API; the only one allowed for `openai`. */
function spendingPath(api: ModelApi): string {
  return api === 'openai' ? CHAT_COMPLETIONS_PATH : MESSAGES_PATH;
}

/** How long close() lets answers the sandbox hung up on run to their end before charging an estimate. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/**
 * How long a streamed Messages request may wait for the upstream's response
 * headers. A streamed answer's headers come at once; an upstream that takes the
 * connection and says nothing (a hung gateway, a black-holed route) would
 * otherwise hold the run silently until its run timeout.
 */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 60_000;

/** Bytes of an upstream error body kept for classifying it; error bodies are small. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;

/** Longest path kept in an audit record; the rest is noise an agent could use to stuff the log. */
const MAX_AUDIT_TARGET_CHARS = 200;

/** Connection-scoped headers (RFC 9110 §7.6.1) plus proxy ones; never forwarded in either direction. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export type ModelCredential = { kind: 'api_key' | 'oauth'; value: string };

export interface ModelBudget {
  dailyTokens: number;
  /** The group's tokens today, read before every request so other runs' spending counts too. */
  tokensUsedToday(): number;
}

export interface ModelProxyOptions {
  socketPath: string;
  placeholderKey: string;
  run: { runId: string; groupFolder: string; taskId: string | null };
  /** http or https, optionally with a path prefix (e.g. a gateway's `/anthropic`). */
  upstreamBaseUrl: string;
  /** Which API the run speaks; `anthropic` (the Messages API) when absent. */
  api?: ModelApi;
  credential: ModelCredential;
  audit: AuditSink;
  /** Called once per response that reported usage; the caller records it with the run's ids. */
  onUsage: (usage: TokenUsage) => void;
  logger?: Logger;
  /** The group's daily token budget; null or absent means none. */
  budget?: ModelBudget | null;
  /** Concurrent connections the sandbox may hold on model.sock. */
  maxConnections?: number;
  drainTimeoutMs?: number;
  /** The model name the owner configured, named in a "model not known" sentence. */
  modelName?: string | null;
  /**
   * Called for every failed Messages request the upstream (or the network)
   * produced, classified; the proxy's own refusals are not reported.
   */
  onModelError?: (error: ModelError) => void;
  /**
   * Wait for the response headers of a streamed Messages request, from when the
   * sandbox's request has been read; past it the request fails as "unreachable
   * (no answer within N s)". A whole-answer (non-streamed) request is not timed:
   * its headers come only with the finished answer. A stream that starts and then
   * stalls is the run's inactivity timeout's job.
   */
  responseTimeoutMs?: number;
}

export interface ModelProxy {
  close(): Promise<void>;
}

/** Copies headers minus hop-by-hop ones (including any the `connection` header names). */
export function withoutHopByHop(headers: http.IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set<string>();
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const token of connection.split(',')) named.add(token.trim().toLowerCase());
  }
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function mergeBetas(clientBeta: string | string[] | undefined, required: string): string {
  const flags = (Array.isArray(clientBeta) ? clientBeta.join(',') : (clientBeta ?? ''))
    .split(',')
    .map((flag) => flag.trim())
    .filter((flag) => flag !== '');
  if (!flags.includes(required)) flags.push(required);
  return flags.join(',');
}

function sendError(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  extraHeaders: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // Same shape as the API's own errors so the agent's client reports them sensibly.
  const body = JSON.stringify({ type: 'error', error: { type, message } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
    ...extraHeaders,
  });
  res.end(body);
}

export type ModelTarget =
  { ok: true; path: string; query: string } | { ok: false; reason: 'path_not_allowed'; auditTarget: string };

/**
 * Exact match on the raw request target: `/v1/messages/../models`, `//v1/messages`
 * or `?x=/../../v1/models` are not these strings, and nothing is normalised.
 */
export function parseModelTarget(
  method: string | undefined,
  rawUrl: string,
  api: ModelApi = 'anthropic',
): ModelTarget {
  const queryAt = rawUrl.indexOf('?');
  const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
  const query = queryAt === -1 ? '' : rawUrl.slice(queryAt + 1);
  const allowed = api === 'openai' ? path === CHAT_COMPLETIONS_PATH : ALLOWED_MODEL_PATHS.has(path);
  if (method !== 'POST' || !allowed) {
    return { ok: false, reason: 'path_not_allowed', auditTarget: path.slice(0, MAX_AUDIT_TARGET_CHARS) };
  }
  if (!ALLOWED_MODEL_QUERIES.has(query) || queryAt === rawUrl.length - 1) {
    return { ok: false, reason: 'path_not_allowed', auditTarget: rawUrl.slice(0, MAX_AUDIT_TARGET_CHARS) };
  }
  return { ok: true, path, query };
}

/** Everything the request handlers share for one run's proxy. */
interface ProxyContext {
  options: ModelProxyOptions;
  api: ModelApi;
  transport: typeof http | typeof https;
  agent: http.Agent;
  upstream: { hostname: string; port: number; host: string; pathPrefix: string };
  scrubber: SecretScrubber;
  refusals: RefusalCounter;
  logger: Logger | undefined;
  log: { group: string; runId: string };
  exchanges: Set<Exchange>;
  maxConnections: number;
}

/**
 * One forwarded request's accounting. It settles exactly once: with the usage
 * the answer reported, with an estimate when the answer was cut short, or with
 * nothing when no answer was ever produced.
 */
interface Exchange {
  readonly request: RequestSniffer;
  readonly settled: Promise<void>;
  /** The client hung up; the answer is still read to its end for the usage. */
  clientGone: boolean;
  extractor: UsageExtractor | null;
  /** A 2xx answer that can carry usage has started: cutting it short costs tokens. */
  charged: boolean;
  responded: boolean;
  finish(usage: TokenUsage | null): void;
  cutShort(): void;
  /** Proxy closing: stop reading, charging an estimate if tokens may have been spent. */
  abort(): void;
}

function reportUsage(ctx: ProxyContext, usage: TokenUsage): void {
  try {
    ctx.options.onUsage(usage);
  } catch (err) {
    ctx.logger?.error(
      { ...ctx.log, error: ctx.scrubber.scrubText((err as Error).message) },
      'model proxy: recording usage failed',
    );
  }
}

function createExchange(ctx: ProxyContext, upReq: http.ClientRequest, req: IncomingMessage): Exchange {
  let done = false;
  let resolveSettled: () => void = () => undefined;
  const settled = new Promise<void>((resolve) => (resolveSettled = resolve));
  const settle = (usage: TokenUsage | null): void => {
    if (done) return;
    done = true;
    ctx.exchanges.delete(exchange);
    if (usage !== null) reportUsage(ctx, usage);
    resolveSettled();
  };
  const estimate = (): TokenUsage => estimateUsage(exchange.extractor?.finish() ?? null, exchange.request);
  const exchange: Exchange = {
    request: createRequestSniffer(),
    settled,
    clientGone: false,
    extractor: null,
    charged: false,
    responded: false,
    finish: settle,
    cutShort: () => settle(exchange.charged ? estimate() : null),
    abort: () => {
      // An answer not yet started to a complete request is being generated, and billed, all the same.
      const spending = exchange.charged || (!exchange.responded && req.complete);
      settle(spending ? estimate() : null);
      upReq.destroy();
    },
  };
  ctx.exchanges.add(exchange);
  return exchange;
}

function upstreamHeaders(
  incoming: http.IncomingHttpHeaders,
  credential: ModelCredential,
  host: string,
  api: ModelApi,
) {
  const headers = withoutHopByHop(incoming);
  delete headers.host;
  delete headers['x-api-key'];
  delete headers.authorization;
  // We read the body for usage and scrubbing; an identity encoding keeps that a plain parse.
  headers['accept-encoding'] = 'identity';
  headers.host = host;
  if (api === 'openai') {
    // A local server (Ollama, llama.cpp) may need no key at all.
    if (credential.value !== '') headers.authorization = `Bearer ${credential.value}`;
  } else if (credential.kind === 'api_key') {
    headers['x-api-key'] = credential.value;
  } else {
    headers.authorization = `Bearer ${credential.value}`;
    headers['anthropic-beta'] = mergeBetas(incoming['anthropic-beta'], OAUTH_BETA);
  }
  return headers;
}

/** The answer's body as plain bytes (we asked for identity, but decode the common codings anyway); null if unknown. */
function decodedBody(upRes: IncomingMessage): Readable | null {
  const encoding = (upRes.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return upRes;
  let decoder: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress;
  if (encoding === 'gzip' || encoding === 'x-gzip') decoder = zlib.createGunzip();
  else if (encoding === 'deflate') decoder = zlib.createInflate();
  else if (encoding === 'br') decoder = zlib.createBrotliDecompress();
  else return null;
  upRes.on('error', (err) => decoder.destroy(err));
  return upRes.pipe(decoder);
}

/** Streams the upstream answer to the client, scrubbed, while the usage parser reads every byte. */
function relayResponse(
  ctx: ProxyContext,
  exchange: Exchange,
  upRes: IncomingMessage,
  res: ServerResponse,
  path: string,
): void {
  exchange.responded = true;
  const status = upRes.statusCode ?? 502;
  const failed = status >= 400 && path === spendingPath(ctx.api);
  const body = decodedBody(upRes);
  if (body === null) {
    ctx.logger?.warn(
      { ...ctx.log, contentEncoding: upRes.headers['content-encoding'] },
      'model proxy: upstream answer has a content-encoding the broker cannot check',
    );
    if (!exchange.clientGone)
      sendError(res, 502, 'api_error', 'model upstream sent a body the broker cannot check');
    upRes.destroy();
    exchange.finish(null);
    return;
  }
  exchange.extractor = createUsageExtractor(upRes.headers['content-type']);
  exchange.charged = status >= 200 && status < 300 && exchange.extractor !== null;
  const scrub = ctx.scrubber.stream();
  if (!exchange.clientGone) {
    const headers = ctx.scrubber.scrubHeaders(withoutHopByHop(upRes.headers));
    // The body is decoded and scrubbed, so its length and coding are ours now (chunked, identity).
    delete headers['content-length'];
    delete headers['content-encoding'];
    // A refused key or an unknown model does not get better by asking again: tell the client so.
    if (failed && !classify(ctx, { status }).retryable) headers['x-should-retry'] = 'false';
    res.writeHead(status, headers);
    // Headers out now: an SSE client should see the stream open before the first event.
    res.flushHeaders();
  }
  const errorBody: Buffer[] = [];
  let errorBytes = 0;
  body.on('data', (chunk: Buffer) => {
    exchange.extractor?.push(chunk);
    if (failed && errorBytes < MAX_ERROR_BODY_BYTES) {
      errorBody.push(chunk);
      errorBytes += chunk.length;
    }
    if (exchange.clientGone) return;
    const out = scrub.push(chunk);
    if (out.length > 0 && !res.write(out)) body.pause();
  });
  res.on('drain', () => body.resume());
  // Once the client is gone nothing applies backpressure: read on to the end for the usage.
  res.on('close', () => body.resume());
  body.on('end', () => {
    if (!exchange.clientGone) res.end(scrub.end());
    if (failed) {
      const text = ctx.scrubber.scrubText(Buffer.concat(errorBody).toString('utf8', 0, MAX_ERROR_BODY_BYTES));
      reportModelError(ctx, { status, ...parseErrorBody(text) });
    }
    exchange.finish(exchange.extractor?.finish() ?? null);
  });
  body.on('error', () => {
    if (!exchange.clientGone) res.destroy();
    exchange.cutShort();
  });
  upRes.on('close', () => {
    if (upRes.complete) return;
    // Aborted upstream mid-answer: the tokens may still have been spent, so charge the most they could be.
    if (!exchange.clientGone) res.destroy();
    exchange.cutShort();
  });
}

/** The client went away: keep reading a requested answer (it is billed regardless) unless the request was incomplete. */
function onClientGone(exchange: Exchange, req: IncomingMessage, upReq: http.ClientRequest): void {
  exchange.clientGone = true;
  if (!req.complete) {
    upReq.destroy();
    exchange.finish(null);
  }
}

function forward(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, target: string): void {
  const { upstream } = ctx;
  let upReq: http.ClientRequest;
  try {
    upReq = ctx.transport.request({
      agent: ctx.agent,
      hostname: upstream.hostname,
      port: upstream.port,
      method: 'POST',
      path: upstream.pathPrefix + target,
      headers: upstreamHeaders(req.headers, ctx.options.credential, upstream.host, ctx.api),
    });
  } catch (err) {
    // Header validation throws synchronously (e.g. a credential with a newline); never crash the host.
    ctx.logger?.error(
      { ...ctx.log, error: ctx.scrubber.scrubText((err as Error).message) },
      'model proxy: cannot build the upstream request',
    );
    return sendError(res, 502, 'api_error', 'model upstream request could not be built');
  }
  const exchange = createExchange(ctx, upReq, req);
  const path = target.split('?')[0];
  const waitForAnswer = answerTimer(ctx, exchange, upReq, path);
  req.on('end', waitForAnswer.arm);
  upReq.on('close', waitForAnswer.stop);
  upReq.on('response', (upRes) => {
    waitForAnswer.stop();
    relayResponse(ctx, exchange, upRes, res, path);
  });
  upReq.on('error', (err: NodeJS.ErrnoException) => {
    waitForAnswer.stop();
    if (exchange.responded) return; // the answer's own 'close' settles it
    const networkMessage = ctx.scrubber.scrubText(err.message);
    const failure: ModelFailure = waitForAnswer.expired()
      ? { noAnswerWithinMs: waitForAnswer.timeoutMs }
      : { networkCode: err.code, networkMessage };
    ctx.logger?.warn({ ...ctx.log, ...failure }, 'model proxy: upstream request failed');
    // The client's own error text then names the configured upstream, not the sandbox's loopback bridge.
    if (!exchange.clientGone) {
      const status = 'noAnswerWithinMs' in failure ? 504 : 502;
      sendError(res, status, 'api_error', classify(ctx, failure).message);
    }
    if (path === spendingPath(ctx.api)) reportModelError(ctx, failure);
    exchange.finish(null);
  });
  res.on('close', () => {
    if (res.writableFinished) return;
    onClientGone(exchange, req, upReq);
  });
  req.on('data', (chunk: Buffer) => exchange.request.push(chunk));
  req.on('error', () => upReq.destroy());
  req.pipe(upReq);
}

interface AnswerTimer {
  readonly timeoutMs: number;
  /** The sandbox's request is all read: the wait for the upstream's headers starts. */
  arm(): void;
  stop(): void;
  /** The wait ran out and the upstream request was cut. */
  expired(): boolean;
}

/** The wait for a streamed Messages request's response headers; cuts the upstream request past it. */
function answerTimer(
  ctx: ProxyContext,
  exchange: Exchange,
  upReq: http.ClientRequest,
  path: string,
): AnswerTimer {
  const timeoutMs = ctx.options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return {
    timeoutMs,
    arm() {
      if (stopped || timer !== undefined || path !== spendingPath(ctx.api) || !exchange.request.streaming())
        return;
      timer = setTimeout(() => {
        timer = undefined;
        if (stopped || exchange.responded) return;
        expired = true;
        upReq.destroy(new Error(`no response headers within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
    },
    stop,
    expired: () => expired,
  };
}

function classify(ctx: ProxyContext, failure: ModelFailure): ModelError {
  return classifyModelError(failure, {
    upstreamHost: ctx.upstream.host,
    modelName: ctx.options.modelName ?? null,
  });
}

function reportModelError(ctx: ProxyContext, failure: ModelFailure): void {
  const error = classify(ctx, failure);
  ctx.logger?.warn(
    { ...ctx.log, class: error.class, retryable: error.retryable },
    `model error: ${error.message}`,
  );
  try {
    ctx.options.onModelError?.(error);
  } catch (err) {
    ctx.logger?.error(
      { ...ctx.log, error: ctx.scrubber.scrubText((err as Error).message) },
      'model proxy: reporting a model error failed',
    );
  }
}

function refuse(ctx: ProxyContext, res: ServerResponse, reason: AuditReason, target: string | null): void {
  const { options } = ctx;
  const record = {
    group: options.run.groupFolder,
    runId: options.run.runId,
    action: 'model_request' as const,
  };
  if (reason === 'connection_limit') {
    ctx.refusals.refuse(reason, target);
    return sendError(res, 429, 'rate_limit_error', 'too many concurrent model requests in this run', {
      'retry-after': '1',
    });
  }
  if (reason === 'budget_exceeded') {
    // An agent may loop on this; one record per run, the rest counted.
    ctx.refusals.refuse(reason, target);
    const budget = options.budget?.dailyTokens ?? 0;
    return sendError(
      res,
      402,
      'billing_error',
      `the daily token budget of this chat (${budget} tokens) is used up; it resets at midnight UTC`,
      { 'x-should-retry': 'false' },
    );
  }
  options.audit.audit({ ...record, target, reason });
  if (reason === 'bad_placeholder_key') {
    return sendError(res, 401, 'authentication_error', 'invalid key for this run');
  }
  sendError(res, 403, 'permission_error', 'path not allowed through the model proxy');
}

function overBudget(budget: ModelBudget | null | undefined): boolean {
  return budget != null && budget.tokensUsedToday() >= budget.dailyTokens;
}

function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const target = parseModelTarget(req.method, req.url ?? '', ctx.api);
  const key = presentedKey(req.headers);
  if (key === null || !keysEqual(key, ctx.options.placeholderKey)) {
    const path = (req.url ?? '').split('?')[0].slice(0, MAX_AUDIT_TARGET_CHARS);
    return refuse(ctx, res, 'bad_placeholder_key', path);
  }
  if (!target.ok) return refuse(ctx, res, target.reason, target.auditTarget);
  if (target.path === spendingPath(ctx.api) && overBudget(ctx.options.budget)) {
    return refuse(ctx, res, 'budget_exceeded', target.path);
  }
  // Pipelined requests, and answers still draining for clients that left, hold upstream requests too.
  if (ctx.exchanges.size >= ctx.maxConnections) return refuse(ctx, res, 'connection_limit', null);
  forward(ctx, req, res, target.query === '' ? target.path : `${target.path}?${target.query}`);
}

/** Requests Node's parser rejects (smuggling, bad framing) never reach a handler; refuse and audit them. */
function handleClientError(ctx: ProxyContext, err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!err.code?.startsWith('HPE_') || !socket.writable) {
    socket.destroy();
    return;
  }
  ctx.options.audit.audit({
    group: ctx.options.run.groupFolder,
    runId: ctx.options.run.runId,
    action: 'model_request',
    target: null,
    reason: 'bad_request',
  });
  const body = JSON.stringify({
    type: 'error',
    error: { type: 'invalid_request_error', message: 'malformed HTTP request' },
  });
  socket.end(
    `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Waits for every exchange to settle, at most `timeoutMs`. */
async function settleWithin(exchanges: Set<Exchange>, timeoutMs: number): Promise<void> {
  if (exchanges.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([Promise.all([...exchanges].map((e) => e.settled)), timedOut]);
  clearTimeout(timer);
}

function createContext(options: ModelProxyOptions): ProxyContext {
  const upstream = new URL(options.upstreamBaseUrl);
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') {
    throw new Error(`model upstream must be http or https, got ${upstream.protocol}`);
  }
  const isHttps = upstream.protocol === 'https:';
  const log = { group: options.run.groupFolder, runId: options.run.runId };
  return {
    options,
    api: options.api ?? 'anthropic',
    transport: isHttps ? https : http,
    agent: isHttps ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true }),
    upstream: {
      hostname: upstream.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: upstream.port === '' ? (isHttps ? 443 : 80) : Number(upstream.port),
      host: upstream.host,
      pathPrefix: upstream.pathname.replace(/\/+$/, ''),
    },
    // A keyless local provider's empty value is below the scrubber's minimum secret length.
    scrubber: createSecretScrubber([options.credential.value]),
    refusals: createRefusalCounter('model_request', options.run, options.audit, options.logger),
    logger: options.logger,
    log,
    exchanges: new Set(),
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS_PER_RUN,
  };
}

export async function startModelProxy(options: ModelProxyOptions): Promise<ModelProxy> {
  const ctx = createContext(options);
  const server = http.createServer((req, res) => handleRequest(ctx, req, res));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
    handleClientError(ctx, err, socket),
  );
  const sockets = trackSockets(server);
  await listenOnUnixSocket(server, options.socketPath);
  guardServer(server, {
    maxConnections: ctx.maxConnections,
    refusals: ctx.refusals,
    run: options.run,
    logger: options.logger,
    name: 'model proxy',
  });

  return {
    async close() {
      // Hanging up on the sandbox turns in-flight answers into drains; give them time to finish.
      const closed = closeUnixServer(server, sockets, options.socketPath);
      await settleWithin(ctx.exchanges, options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
      for (const exchange of [...ctx.exchanges]) exchange.abort();
      ctx.refusals.summarize();
      ctx.agent.destroy();
      await closed;
    },
  };
}
