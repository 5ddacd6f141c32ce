// What the broker costs a run: the extra latency of opening a tunnel through the
// egress proxy, and of the first streamed model byte through the model proxy,
// each against going direct to the same loopback server. Loopback only, bounded.

import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileRule } from '../src/broker/egress-policy.js';
import { startEgressProxy } from '../src/broker/egress-proxy.js';
import { startModelProxy } from '../src/broker/model-proxy.js';
import type { NewAuditRecord } from '../src/core/audit.js';
import { percentile, type BenchFigure } from './figure.js';

const SAMPLES = 200;
const WARMUP = 20;
const PLACEHOLDER = 'bench-placeholder';

async function listenLoopback(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Alternates the two measurements so drift (GC, CPU frequency) hits both equally; returns p50s. */
async function interleaved(direct: () => Promise<number>, proxied: () => Promise<number>) {
  const directMs: number[] = [];
  const proxiedMs: number[] = [];
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    const d = await direct();
    const p = await proxied();
    if (i < WARMUP) continue;
    directMs.push(d);
    proxiedMs.push(p);
  }
  return { direct: percentile(directMs, 50), proxied: percentile(proxiedMs, 50) };
}

function directConnectMs(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      const elapsed = performance.now() - started;
      socket.destroy();
      resolve(elapsed);
    });
    socket.on('error', reject);
  });
}

function tunnelConnectMs(socketPath: string, authority: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(socketPath);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const elapsed = performance.now() - started;
      socket.destroy();
      if (head.startsWith('HTTP/1.1 200')) resolve(elapsed);
      else reject(new Error(`tunnel refused: ${head.split('\r\n')[0]}`));
    });
    socket.on('error', reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

async function benchEgress(dir: string): Promise<BenchFigure> {
  const target = net.createServer((socket) => socket.on('error', () => socket.destroy()));
  const port = await listenLoopback(target);
  const audits: NewAuditRecord[] = [];
  const proxy = await startEgressProxy({
    socketPath: join(dir, 'egress.sock'),
    allowlist: [compileRule({ host: 'bench.test', ports: [port], allowPrivate: true })],
    run: { runId: 'bench', groupFolder: 'bench' },
    audit: { audit: (record) => void audits.push(record) },
    resolve: async () => ['127.0.0.1'],
  });
  try {
    const p50 = await interleaved(
      () => directConnectMs(port),
      () => tunnelConnectMs(join(dir, 'egress.sock'), `bench.test:${port}`),
    );
    if (audits.length > 0) throw new Error('bench tunnel was refused');
    return { name: 'egress_proxy_overhead_ms', value: round(p50.proxied - p50.direct), unit: 'ms' };
  } finally {
    await proxy.close();
    await closeServer(target);
  }
}

function firstByteMs(options: http.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request({ method: 'POST', path: '/v1/messages', ...options }, (res) => {
      res.once('data', () => {
        const elapsed = performance.now() - started;
        // Drain the rest so keep-alive connections are reused.
        res.resume();
        res.on('end', () => resolve(elapsed));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end('{"stream":true}');
  });
}

async function benchModelStream(dir: string): Promise<BenchFigure> {
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":1,"output_tokens":1}}}\n\n',
      );
      // The rest of the stream comes later, like a model still thinking.
      setTimeout(() => res.end('event: message_stop\ndata: {"type":"message_stop"}\n\n'), 1);
    });
  });
  const port = await listenLoopback(upstream);
  const socketPath = join(dir, 'model.sock');
  let usageCount = 0;
  const proxy = await startModelProxy({
    socketPath,
    placeholderKey: PLACEHOLDER,
    run: { runId: 'bench', groupFolder: 'bench', taskId: null },
    upstreamBaseUrl: `http://127.0.0.1:${port}`,
    credential: { kind: 'api_key', value: 'bench-real-key' },
    audit: { audit: () => undefined },
    onUsage: () => void usageCount++,
  });
  const directAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const proxyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const p50 = await interleaved(
      () => firstByteMs({ host: '127.0.0.1', port, agent: directAgent, headers: { 'x-api-key': 'direct' } }),
      () => firstByteMs({ socketPath, agent: proxyAgent, headers: { 'x-api-key': PLACEHOLDER } }),
    );
    if (usageCount !== WARMUP + SAMPLES) throw new Error(`usage recorded ${usageCount} times`);
    return { name: 'broker_stream_overhead_ms', value: round(p50.proxied - p50.direct), unit: 'ms' };
  } finally {
    directAgent.destroy();
    proxyAgent.destroy();
    await proxy.close();
    upstream.closeAllConnections();
    await closeServer(upstream);
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export async function benchBroker(): Promise<BenchFigure[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ncb-bench-'));
  try {
    return [await benchEgress(dir), await benchModelStream(dir)];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
