import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileRule, type EgressEntry } from '../../../src/broker/egress-policy.js';
import { startEgressProxy } from '../../../src/broker/egress-proxy.js';
import {
  collectAudit,
  connectThrough,
  httpOverTunnel,
  rawExchange,
  startFakeUpstream,
  tempDir,
  type AuditCollector,
  type FakeUpstream,
} from './helpers.js';

const RUN = { runId: 'run-9', groupFolder: 'work' };

/** Only loopback can be reached in tests; anything else is a bug in the proxy, caught before a packet leaves. */
function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

interface Fixture {
  socketPath: string;
  audit: AuditCollector;
  upstream: FakeUpstream;
  resolved: string[];
  dialled: string[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(
  entries: (port: number) => EgressEntry[],
  dns: Record<string, string[]>,
  extra: { maxConnections?: number } = {},
): Promise<Fixture> {
  const upstream = await startFakeUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'yes' });
    res.end(`hello from upstream: ${req.method} ${req.url} host=${req.headers.host}`);
  });
  cleanups.push(() => upstream.close());
  const tmp = await tempDir();
  cleanups.push(tmp.cleanup);
  const socketPath = join(tmp.dir, 'egress.sock');
  const audit = collectAudit();
  const resolved: string[] = [];
  const dialled: string[] = [];
  const proxy = await startEgressProxy({
    socketPath,
    allowlist: entries(upstream.port).map(compileRule),
    run: RUN,
    audit,
    resolve: async (host) => {
      resolved.push(host);
      const answer = dns[host];
      if (!answer) throw new Error(`ENOTFOUND ${host}`);
      return answer;
    },
    connect: (address, port) => {
      dialled.push(`${address}:${port}`);
      if (!isLoopback(address)) throw new Error(`test refused to dial non-loopback ${address}`);
      return net.connect({ host: address, port });
    },
    connectTimeoutMs: 2_000,
    ...extra,
  });
  cleanups.push(() => proxy.close());
  return { socketPath, audit, upstream, resolved, dialled };
}

let f: Fixture;
beforeEach(async () => {
  f = await setup(
    (port) => [
      { host: 'allowed.test', ports: [port], allowPrivate: true },
      { host: '*.lan.test', ports: [port], allowPrivate: true },
      { host: 'loopy.test', ports: [port] },
      { host: '*.example.com', ports: [port] },
      'public.test',
    ],
    {
      'allowed.test': ['127.0.0.1'],
      'svc.lan.test': ['127.0.0.1'],
      'loopy.test': ['127.0.0.1'],
      'a.example.com': ['127.0.0.1'],
      'meta.example.com': ['169.254.169.254'],
    },
  );
});

function expectOneRefusal(reason: string, target: string | null): void {
  expect(f.audit.records).toEqual([{ group: 'work', runId: 'run-9', action: 'egress', target, reason }]);
  expect(f.dialled).toEqual([]);
  expect(f.upstream.connections).toBe(0);
}

describe('egress proxy: CONNECT', () => {
  it('tunnels to a listed host, dialling the address it checked', async () => {
    const tunnel = await connectThrough(f.socketPath, `allowed.test:${f.upstream.port}`);
    expect(tunnel.status).toBe(200);
    const response = await httpOverTunnel(tunnel.socket, 'allowed.test', '/ping');
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(response).toContain(`hello from upstream: GET /ping host=allowed.test`);
    expect(f.resolved).toEqual(['allowed.test']);
    expect(f.dialled).toEqual([`127.0.0.1:${f.upstream.port}`]);
    expect(f.audit.records).toEqual([]);
  });

  it('matches wildcard subdomains (with allowPrivate) and tunnels', async () => {
    const tunnel = await connectThrough(f.socketPath, `SVC.lan.test.:${f.upstream.port}`);
    expect(tunnel.status).toBe(200);
    tunnel.socket.destroy();
    expect(f.resolved).toEqual(['svc.lan.test']);
  });

  it('refuses an unlisted host without resolving it', async () => {
    const tunnel = await connectThrough(f.socketPath, 'unlisted.test:443');
    expect(tunnel.status).toBe(403);
    expect(tunnel.rest.toString()).toContain('host_not_allowlisted');
    expectOneRefusal('host_not_allowlisted', 'unlisted.test:443');
    expect(f.resolved).toEqual([]);
  });

  it.each([
    ['evil-example.com', 'lookalike'],
    ['example.com', 'bare domain of a wildcard'],
    ['example.com.evil.test', 'suffix trick'],
  ])('refuses %s (%s)', async (host) => {
    const tunnel = await connectThrough(f.socketPath, `${host}:${f.upstream.port}`);
    expect(tunnel.status).toBe(403);
    expectOneRefusal('host_not_allowlisted', `${host}:${f.upstream.port}`);
    expect(f.resolved).toEqual([]);
  });

  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.0.0.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['169.254.169.254', '169.254.169.254'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['10.0.0.1', '10.0.0.1'],
  ])('refuses the unlisted IP literal %s as %s', async (host, canonical) => {
    const tunnel = await connectThrough(f.socketPath, `${host}:${f.upstream.port}`);
    expect(tunnel.status).toBe(403);
    expectOneRefusal('host_not_allowlisted', `${canonical}:${f.upstream.port}`);
    expect(f.resolved).toEqual([]);
  });

  it('refuses a listed host that resolves to loopback without allowPrivate', async () => {
    const tunnel = await connectThrough(f.socketPath, `loopy.test:${f.upstream.port}`);
    expect(tunnel.status).toBe(403);
    expect(tunnel.rest.toString()).toContain('private_address');
    expectOneRefusal('private_address', `loopy.test:${f.upstream.port}`);
    expect(f.resolved).toEqual(['loopy.test']);
  });

  it('refuses a wildcard match that resolves to loopback or the metadata address', async () => {
    const first = await connectThrough(f.socketPath, `a.example.com:${f.upstream.port}`);
    expect(first.status).toBe(403);
    expectOneRefusal('private_address', `a.example.com:${f.upstream.port}`);
    f.audit.records.length = 0;
    const second = await connectThrough(f.socketPath, `meta.example.com:${f.upstream.port}`);
    expect(second.status).toBe(403);
    expectOneRefusal('private_address', `meta.example.com:${f.upstream.port}`);
  });

  it('refuses a port the entry does not list, before resolving', async () => {
    const tunnel = await connectThrough(f.socketPath, 'allowed.test:22');
    expect(tunnel.status).toBe(403);
    expectOneRefusal('port_not_allowed', 'allowed.test:22');
    expect(f.resolved).toEqual([]);
    f.audit.records.length = 0;
    const other = await connectThrough(f.socketPath, 'public.test:8080');
    expect(other.status).toBe(403);
    expectOneRefusal('port_not_allowed', 'public.test:8080');
  });

  it('refuses when the name does not resolve', async () => {
    const tunnel = await connectThrough(f.socketPath, 'gone.example.com:' + f.upstream.port);
    expect(tunnel.status).toBe(403);
    expectOneRefusal('resolve_failed', `gone.example.com:${f.upstream.port}`);
    expect(f.resolved).toEqual(['gone.example.com']);
  });

  it.each(['allowed.test', 'allowed.test:0', '::1:443', 'a b:443', '[fe80::1%25eth0]:443'])(
    'answers 400 to the malformed authority %j',
    async (authority) => {
      const tunnel = await connectThrough(f.socketPath, authority);
      expect(tunnel.status).toBe(400);
      expect(f.audit.records).toHaveLength(1);
      expect(f.audit.records[0]).toMatchObject({ action: 'egress', reason: 'bad_request' });
      expect(f.resolved).toEqual([]);
      expect(f.dialled).toEqual([]);
    },
  );

  it('answers 502 without audit when the checked address does not accept', async () => {
    await f.upstream.close();
    const tunnel = await connectThrough(f.socketPath, `allowed.test:${f.upstream.port}`);
    expect(tunnel.status).toBe(502);
    expect(f.audit.records).toEqual([]);
    expect(f.dialled).toEqual([`127.0.0.1:${f.upstream.port}`]);
  });
});

describe('egress proxy: plain HTTP', () => {
  function proxyGet(path: string, headers: Record<string, string> = {}, method = 'GET') {
    return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>(
      (resolve, reject) => {
        const req = http.request({ socketPath: f.socketPath, method, path, headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString(),
              headers: res.headers,
            }),
          );
        });
        req.on('error', reject);
        req.end();
      },
    );
  }

  it('forwards an absolute-URL GET to a listed host', async () => {
    const res = await proxyGet(`http://allowed.test:${f.upstream.port}/a/b?c=1`, {
      'proxy-authorization': 'Basic eDp5',
      'x-custom': '1',
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-upstream']).toBe('yes');
    expect(res.body).toBe(`hello from upstream: GET /a/b?c=1 host=allowed.test:${f.upstream.port}`);
    const seen = f.upstream.requests[0];
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.headers['x-custom']).toBe('1');
    expect(f.dialled).toEqual([`127.0.0.1:${f.upstream.port}`]);
    expect(f.audit.records).toEqual([]);
  });

  it('refuses an absolute-URL GET to an unlisted host', async () => {
    const res = await proxyGet('http://evil.test/steal');
    expect(res.status).toBe(403);
    expectOneRefusal('host_not_allowlisted', 'evil.test:80');
  });

  it('refuses an absolute-URL GET to the metadata address in any spelling', async () => {
    const res = await proxyGet('http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/');
    expect(res.status).toBe(403);
    expectOneRefusal('host_not_allowlisted', '169.254.169.254:80');
  });

  it.each([
    ['GET', '/relative'],
    ['POST', '/submit'],
    ['GET', 'https://allowed.test/'],
    ['OPTIONS', '*'],
  ])('answers 400 to %s %s', async (method, path) => {
    const res = await proxyGet(path, {}, method);
    expect(res.status).toBe(400);
    expect(f.audit.records).toHaveLength(1);
    expect(f.audit.records[0]).toMatchObject({
      action: 'egress',
      reason: 'bad_request',
      group: 'work',
      runId: 'run-9',
    });
    expect(f.dialled).toEqual([]);
    expect(f.resolved).toEqual([]);
  });

  it('answers 400 to a websocket upgrade over plain HTTP', async () => {
    const response = await rawExchange(
      f.socketPath,
      `GET http://allowed.test:${f.upstream.port}/ws HTTP/1.1\r\nHost: allowed.test\r\n` +
        'Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    expect(response).toMatch(/^HTTP\/1\.1 400/);
    expect(f.audit.records).toHaveLength(1);
    expect(f.dialled).toEqual([]);
  });
});

describe('egress proxy: listed IP literals', () => {
  it('tunnels to a literal listed with allowPrivate, in any spelling', async () => {
    f = await setup((port) => [{ host: '127.0.0.1', ports: [port], allowPrivate: true }], {});
    const tunnel = await connectThrough(f.socketPath, `2130706433:${f.upstream.port}`);
    expect(tunnel.status).toBe(200);
    tunnel.socket.destroy();
    expect(f.resolved).toEqual([]);
    expect(f.dialled).toEqual([`127.0.0.1:${f.upstream.port}`]);
  });

  it('still refuses a listed internal literal without allowPrivate', async () => {
    f = await setup((port) => [{ host: '127.0.0.1', ports: [port] }], {});
    const tunnel = await connectThrough(f.socketPath, `127.0.0.1:${f.upstream.port}`);
    expect(tunnel.status).toBe(403);
    expectOneRefusal('private_address', `127.0.0.1:${f.upstream.port}`);
  });
});

describe('egress proxy: connection cap (issue 9 item 1)', () => {
  it('refuses connections past the cap at once, audits the first only, and tunnels again after', async () => {
    const capped = await setup(
      (port) => [{ host: 'allowed.test', ports: [port], allowPrivate: true }],
      {
        'allowed.test': ['127.0.0.1'],
      },
      { maxConnections: 2 },
    );
    const authority = `allowed.test:${capped.upstream.port}`;
    const open = [
      await connectThrough(capped.socketPath, authority),
      await connectThrough(capped.socketPath, authority),
    ];
    expect(open.map((t) => t.status)).toEqual([200, 200]);

    const refused = await Promise.allSettled(
      Array.from({ length: 15 }, () => connectThrough(capped.socketPath, authority)),
    );
    for (const attempt of refused) {
      if (attempt.status === 'fulfilled') {
        expect(attempt.value.status).toBe(0);
        attempt.value.socket.destroy();
      }
    }
    expect(capped.dialled).toHaveLength(2);
    expect(capped.audit.records).toEqual([
      { group: 'work', runId: 'run-9', action: 'egress', target: null, reason: 'connection_limit' },
    ]);

    const closed = open.map((t) => new Promise((resolve) => t.socket.once('close', resolve)));
    for (const t of open) t.socket.destroy();
    await Promise.all(closed);
    // The broker sees each close a moment after the client does.
    let tunnel = null;
    for (let attempt = 0; attempt < 100 && tunnel?.status !== 200; attempt++) {
      tunnel = await connectThrough(capped.socketPath, authority).catch(() => null);
    }
    expect(tunnel?.status).toBe(200);
    tunnel?.socket.destroy();
    expect(capped.audit.records).toHaveLength(1);
  });
});

describe('egress proxy: upstream cap', () => {
  it('refuses pipelined plain-HTTP requests past the cap, audited once, dialling no more than the cap', async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const slow = await startFakeUpstream(async (_req, res) => {
      await released;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('slow ok');
    });
    cleanups.push(() => slow.close());
    const capped = await setup(
      () => [{ host: 'allowed.test', ports: [slow.port], allowPrivate: true }],
      { 'allowed.test': ['127.0.0.1'] },
      { maxConnections: 2 },
    );
    const one = `GET http://allowed.test:${slow.port}/x HTTP/1.1\r\nHost: allowed.test:${slow.port}\r\n\r\n`;
    const answer = rawExchange(capped.socketPath, one.repeat(4));
    // Every request after the first two was refused at dial time; then the held ones may finish.
    await new Promise<void>((resolve) => {
      const check = (): void => (capped.audit.records.length > 0 ? resolve() : void setImmediate(check));
      check();
    });
    release();
    const text = await answer;
    expect(capped.dialled).toHaveLength(2);
    expect(text.match(/^HTTP\/1\.1 \d+/gm)?.slice(0, 2)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(text).toMatch(/HTTP\/1\.1 502/);
    expect(capped.audit.records).toEqual([
      { group: 'work', runId: 'run-9', action: 'egress', target: null, reason: 'connection_limit' },
    ]);
  });
});
