// The per-run egress proxy (ARCHITECTURE "Broker"): the sandbox's only way out to
// anything but the model. It speaks just enough HTTP proxy (CONNECT tunnels and
// absolute-URL requests) to let ordinary clients through, decides every target
// with egress-policy.ts, and dials exactly the addresses that were checked, so a
// second DNS answer can never redirect a connection inward (SPEC §10.2, §10.8).

import { lookup } from 'node:dns/promises';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import {
  decideEgress,
  parseAuthority,
  type EgressRefusalReason,
  type EgressRules,
  type Resolver,
} from './egress-policy.js';
import { createRefusalCounter, DEFAULT_MAX_CONNECTIONS_PER_RUN, guardServer } from './guard.js';
import { withoutHopByHop } from './model-proxy.js';
import { closeUnixServer, listenOnUnixSocket, trackSockets } from './socket.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Longest raw target kept in an audit record for requests we could not parse. */
const MAX_AUDIT_TARGET_CHARS = 255;

export interface EgressProxyOptions {
  socketPath: string;
  allowlist: EgressRules;
  run: { runId: string; groupFolder: string };
  audit: AuditSink;
  /** Host-side resolver; defaults to the system's (getaddrinfo, so /etc/hosts applies). */
  resolve?: Resolver;
  connectTimeoutMs?: number;
  /** Opens the upstream TCP connection to an already-checked IP; tests wrap it to watch every dial. */
  connect?: (address: string, port: number) => net.Socket;
  /** Concurrent connections (each at most one tunnel or request upstream) the sandbox may hold on egress.sock. */
  maxConnections?: number;
  logger?: Logger;
}

export interface EgressProxy {
  close(): Promise<void>;
}

export async function systemResolve(host: string): Promise<string[]> {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((answer) => answer.address);
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 502: 'Bad Gateway' };

/** A complete response written straight onto a raw socket (CONNECT has no ServerResponse). */
function writeRawResponse(socket: Duplex, status: number, body: string): void {
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\ncontent-type: text/plain\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function refusalText(reason: EgressRefusalReason, target: string | null): string {
  return `egress refused (${reason})${target ? `: ${target}` : ''}\n`;
}

/** Tries the checked addresses in order; only these IPs are ever dialled, never a name. */
function dialChecked(
  connect: (address: string, port: number) => net.Socket,
  addresses: string[],
  port: number,
  timeoutMs: number,
  upstreams: Set<net.Socket>,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let index = 0;
    const attempt = (lastError: Error | null): void => {
      if (index >= addresses.length) {
        reject(lastError ?? new Error('no address'));
        return;
      }
      const address = addresses[index++];
      let socket: net.Socket;
      try {
        socket = connect(address, port);
      } catch (err) {
        attempt(err as Error);
        return;
      }
      upstreams.add(socket);
      socket.once('close', () => upstreams.delete(socket));
      const timer = setTimeout(
        () => socket.destroy(new Error(`connect timeout after ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        attempt(err);
      });
    };
    attempt(null);
  });
}

export async function startEgressProxy(options: EgressProxyOptions): Promise<EgressProxy> {
  const rules = options.allowlist;
  const resolve = options.resolve ?? systemResolve;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const connect =
    options.connect ?? ((address: string, port: number) => net.connect({ host: address, port }));
  const upstreams = new Set<net.Socket>();
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS_PER_RUN;
  const refusals = createRefusalCounter('egress', options.run, options.audit, options.logger);
  const dial = (addresses: string[], port: number): Promise<net.Socket> => {
    // Pipelined requests on one client connection each dial: the cap holds for upstreams too.
    if (upstreams.size >= maxConnections) {
      refusals.refuse('connection_limit', null);
      return Promise.reject(new Error('too many upstream connections for this run'));
    }
    return dialChecked(connect, addresses, port, connectTimeoutMs, upstreams);
  };

  const audit = (reason: EgressRefusalReason, target: string | null): void => {
    options.audit.audit({
      group: options.run.groupFolder,
      runId: options.run.runId,
      action: 'egress',
      target: target === null ? null : target.slice(0, MAX_AUDIT_TARGET_CHARS),
      reason,
    });
  };

  const onConnect = (req: IncomingMessage, client: Duplex, head: Buffer): void => {
    // A client vanishing mid-decision must not crash the host.
    client.on('error', () => client.destroy());
    const raw = req.url ?? '';
    const authority = parseAuthority(raw);
    if (authority === null) {
      audit('bad_request', raw);
      writeRawResponse(client, 400, refusalText('bad_request', null));
      return;
    }
    void (async () => {
      const decision = await decideEgress(rules, authority.host, authority.port, resolve);
      if (!decision.ok) {
        const target = decision.target ?? raw;
        audit(decision.reason, target);
        writeRawResponse(
          client,
          decision.reason === 'bad_request' ? 400 : 403,
          refusalText(decision.reason, target),
        );
        return;
      }
      if (client.destroyed) return;
      let upstream: net.Socket;
      try {
        upstream = await dial(decision.addresses, decision.port);
      } catch {
        writeRawResponse(client, 502, `could not connect to ${decision.target}\n`);
        return;
      }
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      upstream.setNoDelay(true);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      upstream.pipe(client);
      client.pipe(upstream);
    })();
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const raw = req.url ?? '';
    const refuse = (reason: EgressRefusalReason, target: string | null): void => {
      audit(reason, target);
      const body = refusalText(reason, target);
      res.writeHead(reason === 'bad_request' ? 400 : 403, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      });
      res.end(body);
    };
    // Only absolute http:// URLs; https goes through CONNECT so TLS stays end to end.
    if (!/^http:\/\//i.test(raw))
      return refuse('bad_request', /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : null);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return refuse('bad_request', raw);
    }
    const port = url.port === '' ? 80 : Number(url.port);
    void (async () => {
      const decision = await decideEgress(rules, url.hostname, port, resolve);
      if (!decision.ok) return refuse(decision.reason, decision.target ?? url.host);
      let socket: net.Socket;
      try {
        socket = await dial(decision.addresses, decision.port);
      } catch {
        res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' });
        res.end(`could not connect to ${decision.target}\n`);
        return;
      }
      const headers = withoutHopByHop(req.headers);
      headers.host = url.host;
      // The dialled socket serves exactly this request.
      headers.connection = 'close';
      const upReq = http.request({
        method: req.method,
        path: url.pathname + url.search,
        headers,
        setHost: false,
        createConnection: () => socket,
      });
      upReq.on('response', (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, withoutHopByHop(upRes.headers));
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
      });
      upReq.on('error', () => {
        if (res.headersSent) res.destroy();
        else {
          res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' });
          res.end(`upstream error for ${decision.target}\n`);
        }
      });
      res.on('close', () => {
        if (!res.writableFinished) upReq.destroy();
      });
      req.pipe(upReq);
    })();
  };

  const server = http.createServer(onRequest);
  server.on('connect', onConnect);
  // Upgrades (websockets) over plain HTTP are not a supported shape; CONNECT covers them.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    audit('bad_request', req.url ?? null);
    writeRawResponse(socket, 400, refusalText('bad_request', null));
  });
  // Requests Node's parser rejects never reach a handler; they are refusals all the same.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code?.startsWith('HPE_')) {
      audit('bad_request', null);
      writeRawResponse(socket, 400, refusalText('bad_request', null));
    } else {
      socket.destroy();
    }
  });
  const sockets = trackSockets(server);
  await listenOnUnixSocket(server, options.socketPath);
  guardServer(server, {
    maxConnections,
    refusals,
    run: options.run,
    logger: options.logger,
    name: 'egress proxy',
  });

  return {
    async close() {
      refusals.summarize();
      for (const socket of upstreams) socket.destroy();
      await closeUnixServer(server, sockets, options.socketPath);
    },
  };
}
