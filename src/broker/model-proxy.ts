// The per-run credential proxy (ARCHITECTURE "Broker"). The sandbox only ever holds
// a worthless placeholder key; this plain-HTTP reverse proxy on the run's
// model.sock swaps it for the real credential, lets through only the Messages API,
// streams answers back unbuffered and counts tokens on the way (SPEC §10.1, §11).

import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AuditReason, AuditSink } from '../core/audit.js';
import type { TokenUsage } from '../core/types.js';
import { keysEqual, presentedKey, scrubSecrets } from './credential.js';
import { closeUnixServer, listenOnUnixSocket, trackSockets } from './socket.js';
import { createUsageExtractor } from './usage.js';

/** Beta flag the API requires for OAuth bearer tokens; merged into the client's betas. */
export const OAUTH_BETA = 'oauth-2025-04-20';

/** The only upstream paths a sandbox may reach (query strings allowed). */
export const ALLOWED_MODEL_PATHS: ReadonlySet<string> = new Set([
  '/v1/messages',
  '/v1/messages/count_tokens',
]);

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

export interface BrokerLogger {
  warn(message: string): void;
}

export type ModelCredential = { kind: 'api_key' | 'oauth'; value: string };

export interface ModelProxyOptions {
  socketPath: string;
  placeholderKey: string;
  run: { runId: string; groupFolder: string; taskId: string | null };
  /** http or https, optionally with a path prefix (e.g. a gateway's `/anthropic`). */
  upstreamBaseUrl: string;
  credential: ModelCredential;
  audit: AuditSink;
  /** Called once per response that reported usage; the caller records it with the run's ids. */
  onUsage: (usage: TokenUsage) => void;
  logger?: BrokerLogger;
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

function upstreamHeaders(incoming: http.IncomingHttpHeaders, credential: ModelCredential, host: string) {
  const headers = withoutHopByHop(incoming);
  delete headers.host;
  delete headers['x-api-key'];
  delete headers.authorization;
  // We read the body for usage; an identity encoding keeps that a plain parse.
  headers['accept-encoding'] = 'identity';
  headers.host = host;
  if (credential.kind === 'api_key') {
    headers['x-api-key'] = credential.value;
  } else {
    headers.authorization = `Bearer ${credential.value}`;
    headers['anthropic-beta'] = mergeBetas(incoming['anthropic-beta'], OAUTH_BETA);
  }
  return headers;
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
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
  });
  res.end(body);
}

export async function startModelProxy(options: ModelProxyOptions): Promise<ModelProxy> {
  const { placeholderKey, credential, audit, onUsage, logger } = options;
  const upstream = new URL(options.upstreamBaseUrl);
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') {
    throw new Error(`model upstream must be http or https, got ${upstream.protocol}`);
  }
  const isHttps = upstream.protocol === 'https:';
  const transport = isHttps ? https : http;
  const upstreamHostname = upstream.hostname.replace(/^\[(.*)\]$/, '$1');
  const upstreamPort = upstream.port === '' ? (isHttps ? 443 : 80) : Number(upstream.port);
  const pathPrefix = upstream.pathname.replace(/\/+$/, '');
  const agent = isHttps ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const secrets = [credential.value];
  const scrub = (text: string): string => scrubSecrets(text, secrets);

  const refuse = (res: ServerResponse, status: number, reason: AuditReason, path: string): void => {
    audit.audit({
      group: options.run.groupFolder,
      runId: options.run.runId,
      action: 'model_request',
      target: path.slice(0, MAX_AUDIT_TARGET_CHARS),
      reason,
    });
    const [type, message] =
      status === 401
        ? ['authentication_error', 'invalid key for this run']
        : ['permission_error', 'path not allowed through the model proxy'];
    sendError(res, status, type, message);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const rawUrl = req.url ?? '';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt === -1 ? '' : rawUrl.slice(queryAt);

    const key = presentedKey(req.headers);
    if (key === null || !keysEqual(key, placeholderKey)) return refuse(res, 401, 'bad_placeholder_key', path);
    // Exact match on the raw path: `/v1/messages/../models` or `//v1/messages` are not these strings.
    if (req.method !== 'POST' || !ALLOWED_MODEL_PATHS.has(path))
      return refuse(res, 403, 'path_not_allowed', path);

    let upReq: http.ClientRequest;
    try {
      upReq = transport.request({
        agent,
        hostname: upstreamHostname,
        port: upstreamPort,
        method: 'POST',
        path: pathPrefix + path + query,
        headers: upstreamHeaders(req.headers, credential, upstream.host),
      });
    } catch (err) {
      // Header validation throws synchronously (e.g. a credential with a newline); never crash the host.
      logger?.warn(scrub(`model proxy: cannot build upstream request: ${(err as Error).message}`));
      return sendError(res, 502, 'api_error', 'model upstream request could not be built');
    }

    let usageReported = false;
    const reportUsage = (usage: TokenUsage | null): void => {
      if (usageReported || usage === null) return;
      usageReported = true;
      try {
        onUsage(usage);
      } catch (err) {
        logger?.warn(scrub(`model proxy: usage callback failed: ${(err as Error).message}`));
      }
    };

    upReq.on('response', (upRes) => {
      const extractor = createUsageExtractor(upRes.headers['content-type']);
      const encoding = upRes.headers['content-encoding'];
      const parseUsage = extractor !== null && (encoding === undefined || encoding === 'identity');
      if (extractor !== null && !parseUsage) {
        logger?.warn(`model proxy: upstream sent ${String(encoding)} body; usage not recorded`);
      }
      res.writeHead(upRes.statusCode ?? 502, withoutHopByHop(upRes.headers));
      // Headers out now: an SSE client should see the stream open before the first event.
      res.flushHeaders();
      upRes.on('data', (chunk: Buffer) => {
        if (parseUsage) extractor.push(chunk);
        if (!res.write(chunk)) upRes.pause();
      });
      res.on('drain', () => upRes.resume());
      upRes.on('end', () => {
        res.end();
        if (parseUsage) reportUsage(extractor.finish());
      });
      upRes.on('error', () => res.destroy());
      // Aborted mid-stream: the tokens were still spent, so count what was seen.
      upRes.on('close', () => {
        if (parseUsage && !upRes.complete) reportUsage(extractor.finish());
        if (!upRes.complete) res.destroy();
      });
    });

    upReq.on('error', (err: NodeJS.ErrnoException) => {
      const detail = err.code ?? err.message;
      logger?.warn(
        scrub(`model proxy: upstream request failed for run ${options.run.runId}: ${err.message}`),
      );
      sendError(res, 502, 'api_error', scrub(`model upstream unreachable (${detail})`));
    });

    // The client went away: stop paying for an answer nobody reads.
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    req.on('error', () => upReq.destroy());
    req.pipe(upReq);
  };

  const server = http.createServer(handle);
  const sockets = trackSockets(server);
  await listenOnUnixSocket(server, options.socketPath);

  return {
    async close() {
      agent.destroy();
      await closeUnixServer(server, sockets, options.socketPath);
    },
  };
}
