// Loopback-only fixtures for the broker tests: a recording fake upstream, an
// audit collector, and raw clients for unix-socket HTTP and CONNECT.

import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { AuditSink, NewAuditRecord } from '../../../src/core/audit.js';
import type { Logger } from '../../../src/core/logger.js';

export interface AuditCollector extends AuditSink {
  records: NewAuditRecord[];
}

export function collectAudit(): AuditCollector {
  const records: NewAuditRecord[] = [];
  return { records, audit: (record) => void records.push(record) };
}

export async function tempDir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  // Short base path: unix socket paths are limited to ~107 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'ncb-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface FakeUpstream {
  port: number;
  baseUrl: string;
  requests: RecordedRequest[];
  connections: number;
  close(): Promise<void>;
}

/** A local HTTP server; the handler runs after the request body has been read and recorded. */
export async function startFakeUpstream(
  handler: (req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest) => void | Promise<void>,
): Promise<FakeUpstream> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      void handler(req, res, recorded);
    });
  });
  const upstream: FakeUpstream = {
    port: 0,
    baseUrl: '',
    requests,
    connections: 0,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', (socket: net.Socket) => {
    upstream.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.port = (server.address() as AddressInfo).port;
  upstream.baseUrl = `http://127.0.0.1:${upstream.port}`;
  return upstream;
}

/** A loopback port nothing listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface SocketResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function requestOverSocket(
  socketPath: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<SocketResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method: options.method ?? 'POST',
        path: options.path,
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes raw bytes to the socket and collects everything until the server closes. */
export function rawExchange(socketPath: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

export interface Tunnel {
  status: number;
  /** Response head (status line and headers) of the CONNECT answer. */
  head: string;
  /** For refusals: the body; for tunnels: bytes that arrived with the head. */
  rest: Buffer;
  socket: net.Socket;
}

/** Sends CONNECT and returns once the answer's head is in; for refusals, after the server closed. */
export function connectThrough(socketPath: string, authority: string): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 200) {
        socket.off('data', onData);
        resolve({ status, head, rest: buffered.subarray(end + 4), socket });
      }
    };
    socket.on('data', onData);
    socket.on('end', () => {
      const text = buffered.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, head: text.slice(0, end), rest: buffered.subarray(end + 4), socket });
    });
    socket.on('error', reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

/** One HTTP/1.1 request over an open tunnel; returns the raw response once the server closes. */
export function httpOverTunnel(socket: net.Socket, host: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: object;
  msg: string;
}

/** A Logger that keeps every structured entry, so tests can check fields and that no secret got in. */
export function collectLogs(): Logger & { entries: LogEntry[]; text(): string } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (first: object | string, msg?: string): void => {
      if (typeof first === 'string') entries.push({ level, fields: {}, msg: first });
      else entries.push({ level, fields: first, msg: msg ?? '' });
    };
  return {
    entries,
    text: () => entries.map((e) => `${e.msg} ${JSON.stringify(e.fields)}`).join('\n'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}
