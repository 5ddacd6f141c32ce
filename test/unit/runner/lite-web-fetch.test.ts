// web_fetch through the real egress proxy on a unix socket (as in a run): an
// https page over a CONNECT tunnel (self-signed, trusted for the test), plain
// http, redirects, refusals by the allowlist, and HTML turned into text.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRule } from '../../../src/broker/egress-policy.js';
import { startEgressProxy, type EgressProxy } from '../../../src/broker/egress-proxy.js';
import { htmlToText, webFetch, WEB_FETCH_DEFAULTS } from '../../../runner/lite/web-fetch.js';
import { collectAudit, tempDir } from '../broker/helpers.js';

let tmp: { dir: string; cleanup(): Promise<void> };
let proxy: EgressProxy;
let socketPath: string;
let cert: string;
const servers: Array<http.Server> = [];
let httpPort = 0;
let httpsPort = 0;
const audit = collectAudit();

const PAGE =
  '<html><head><title>Docs &amp; more</title><style>p{}</style><script>alert(1)</script></head>' +
  '<body><h1>Hello</h1><p>First&nbsp;para with <a href="https://x.test/a">a link</a>.</p>' +
  '<ul><li>one</li><li>two</li></ul></body></html>';

beforeAll(async () => {
  tmp = await tempDir();
  const key = path.join(tmp.dir, 'key.pem');
  const certFile = path.join(tmp.dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=secure.test',
      '-addext',
      'subjectAltName=DNS:secure.test',
    ],
    { stdio: 'ignore' },
  );
  cert = fs.readFileSync(certFile, 'utf8');

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/moved') {
      res.writeHead(302, { location: '/page' });
      res.end();
    } else if (req.url === '/page') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    } else if (req.url === '/blob') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(64));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such page');
    }
  };
  const plain = http.createServer(handler);
  const secure = https.createServer({ key: fs.readFileSync(key), cert }, handler);
  for (const server of [plain, secure]) {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }
  httpPort = (plain.address() as AddressInfo).port;
  httpsPort = (secure.address() as AddressInfo).port;

  socketPath = path.join(tmp.dir, 'egress.sock');
  proxy = await startEgressProxy({
    socketPath,
    allowlist: [
      compileRule({ host: 'plain.test', ports: [httpPort], allowPrivate: true }),
      compileRule({ host: 'secure.test', ports: [httpsPort], allowPrivate: true }),
    ],
    run: { runId: 'run-1', groupFolder: 'family' },
    audit,
    resolve: async (host) => {
      if (host === 'plain.test' || host === 'secure.test' || host === 'other.test') return ['127.0.0.1'];
      throw new Error(`ENOTFOUND ${host}`);
    },
    connect: (address, port) => net.connect({ host: address, port }),
  });
});

afterAll(async () => {
  await proxy.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await tmp.cleanup();
});

const fetchText = async (url: string, withInternet = true) => {
  const egressSocket = withInternet ? socketPath : undefined;
  const result = await webFetch(url, { ...WEB_FETCH_DEFAULTS, egressSocket, ca: cert });
  return { text: String(result.content), isError: result.isError === true };
};

describe('web_fetch', () => {
  it('fetches https through a CONNECT tunnel and renders HTML as text', async () => {
    const { text, isError } = await fetchText(`https://secure.test:${httpsPort}/page`);
    expect(isError, text).toBe(false);
    expect(text).toBe(
      `200 https://secure.test:${httpsPort}/page\n\nDocs & more\n\nHello\n\nFirst para with a link (https://x.test/a).\n\n- one\n- two`,
    );
  });

  it('verifies the site certificate inside the tunnel', async () => {
    const result = await webFetch(`https://secure.test:${httpsPort}/page`, {
      ...WEB_FETCH_DEFAULTS,
      egressSocket: socketPath,
    });
    expect(result.isError).toBe(true);
    expect(String(result.content)).toMatch(/self.signed certificate/);
  });

  it('fetches plain http through the proxy and follows a redirect', async () => {
    const { text, isError } = await fetchText(`http://plain.test:${httpPort}/moved`);
    expect(isError).toBe(false);
    expect(text.split('\n')[0]).toBe(`200 http://plain.test:${httpPort}/page`);
    expect(text).toContain('- two');
  });

  it('reports a host off the allowlist as such, for https and http, and the proxy audits it', async () => {
    const https403 = await fetchText(`https://other.test:${httpsPort}/page`);
    expect(https403).toEqual({
      text: "web_fetch: other.test is not on this chat's egress allowlist; the owner can add it to egress-allowlist.json in the config dir",
      isError: true,
    });
    const http403 = await fetchText(`http://other.test:${httpPort}/page`);
    expect(http403.text).toMatch(/^other\.test is not on this chat's egress allowlist/);
    expect(audit.records.filter((r) => r.action === 'egress')).toHaveLength(2);
  });

  it('says what to do without internet, for binary content, errors and bad URLs', async () => {
    expect((await fetchText('https://secure.test/', false)).text).toMatch(
      /^this chat has no internet access/,
    );
    const blob = await fetchText(`http://plain.test:${httpPort}/blob`);
    expect(blob.text).toMatch(/application\/octet-stream, 64 bytes: not text; download it with bash/);
    const missing = await fetchText(`http://plain.test:${httpPort}/nope`);
    expect(missing).toEqual({
      text: `404 http://plain.test:${httpPort}/nope\n\nno such page`,
      isError: true,
    });
    expect((await fetchText('not a url')).text).toMatch(/is not a URL/);
    expect((await fetchText('file:///etc/passwd')).text).toMatch(/only http and https/);
  });
});

it('htmlToText decodes entities and drops comments and scripts', () => {
  expect(htmlToText('<!-- x --><p>a &lt;b&gt; &#233;&#x4e2d;</p><script>bad()</script>')).toBe('a <b> é中');
});
