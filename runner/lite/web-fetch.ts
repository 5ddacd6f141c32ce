// The lite engine's web_fetch tool: GET a URL through the run's egress proxy
// (CONNECT for https, so TLS stays end to end; an absolute-URL request for
// http), follow a few redirects, and hand the model readable text — HTML is
// reduced to its words and links. The proxy decides what may be reached.

import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { capOutput, type ToolResult } from './local-tools.js';
import type { ToolDefinition } from './messages-api.js';

export const WEB_FETCH_DEFINITION: ToolDefinition = {
  name: 'web_fetch',
  description:
    'Fetch a web page or text document (http or https) and return its text; HTML is turned into plain text. ' +
    'Only hosts on this chat’s egress allowlist can be reached.',
  input_schema: {
    type: 'object',
    properties: { url: { type: 'string', description: 'The full URL, e.g. https://example.com/page' } },
    required: ['url'],
  },
};

export interface WebFetchOptions {
  /** The run's egress proxy socket; undefined when the chat has no internet access. */
  egressSocket: string | undefined;
  maxBodyBytes: number;
  maxOutputChars: number;
  timeoutMs: number;
  maxRedirects: number;
  /** Extra trust roots (tests use a self-signed server). */
  ca?: string | Buffer;
}

export const WEB_FETCH_DEFAULTS = {
  maxBodyBytes: 2 * 1024 * 1024,
  maxOutputChars: 30_000,
  timeoutMs: 30_000,
  maxRedirects: 5,
};

interface Fetched {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  truncated: boolean;
}

class FetchError extends Error {}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code =
        name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** Readable text of an HTML page: no scripts or styles, block elements on their own lines, links kept. */
export function htmlToText(html: string): string {
  const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html)?.[1];
  const text = html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(script|style|noscript|template|svg|head)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(
      /<a\b[^>]*\bhref\s*=\s*["']([^"']*)["'][^>]*>([\s\S]*?)<\/a\s*>/gi,
      (_m, href: string, inner: string) => {
        const words = inner.replace(/<[^>]+>/g, '').trim();
        return href.startsWith('#') || href.startsWith('javascript:') || words === ''
          ? words
          : `${words} (${href})`;
      },
    )
    .replace(/<li\b[^>]*>/gi, '\n- ')
    .replace(/<(br|hr)\b[^>]*>/gi, '\n')
    .replace(
      /<\/?(p|div|section|article|header|footer|main|nav|ul|ol|table|tr|h[1-6]|pre|blockquote)\b[^>]*>/gi,
      '\n',
    )
    .replace(/<\/t[dh]\s*>/gi, '\t')
    .replace(/<[^>]+>/g, '');
  const lines = decodeEntities(text)
    .split('\n')
    .map((line) => line.replace(/[ \t\u00a0]+/g, ' ').trim());
  const body = lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return title ? `${decodeEntities(title).trim()}\n\n${body}` : body;
}

function readBody(
  res: http.IncomingMessage,
  maxBytes: number,
): Promise<{ body: Buffer; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    res.on('data', (chunk: Buffer) => {
      if (truncated) return;
      if (size + chunk.length > maxBytes) {
        chunks.push(chunk.subarray(0, maxBytes - size));
        size = maxBytes;
        truncated = true;
        res.destroy();
        resolve({ body: Buffer.concat(chunks), truncated });
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    });
    res.on('end', () => resolve({ body: Buffer.concat(chunks), truncated }));
    res.on('error', (err) => (truncated ? undefined : reject(err)));
  });
}

/** Opens a CONNECT tunnel through the proxy socket to host:port. */
function tunnel(socketPath: string, host: string, port: number, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const req = http.request({
      socketPath,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority },
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new FetchError(`no answer from the egress proxy in ${timeoutMs} ms`)),
    );
    req.on('connect', (res, socket) => {
      if (res.statusCode === 200) return resolve(socket);
      socket.destroy();
      reject(new FetchError(refusal(res.statusCode ?? 0, host)));
    });
    req.on('error', reject);
    req.end();
  });
}

function refusal(status: number, host: string): string {
  return status === 403
    ? `${host} is not on this chat's egress allowlist; the owner can add it to egress-allowlist.json in the config dir`
    : `the egress proxy refused ${host} (HTTP ${status})`;
}

async function getOnce(url: URL, socketPath: string, options: WebFetchOptions): Promise<Fetched> {
  const headers = {
    'user-agent': 'nanoclaw-lite/1 (web_fetch)',
    accept: 'text/html,text/plain,application/json,*/*;q=0.5',
    'accept-encoding': 'identity',
    host: url.host,
  };
  const path = `${url.pathname}${url.search}`;
  let request: http.RequestOptions;
  if (url.protocol === 'https:') {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 443);
    const raw = await tunnel(socketPath, host, port, options.timeoutMs);
    const ca = options.ca ? { ca: options.ca } : {};
    request = {
      method: 'GET',
      path,
      headers,
      // With no agent, node uses createConnection: the TLS session runs inside the tunnel, end to end.
      createConnection: () => tls.connect({ socket: raw, servername: host, ...ca }),
    };
  } else {
    // A plain-http proxy request names the whole URL.
    request = { socketPath, method: 'GET', path: url.href, headers, agent: false };
  }
  const client = url.protocol === 'https:' ? https : http;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = client.request(request, resolve);
    req.setTimeout(options.timeoutMs, () =>
      req.destroy(new FetchError(`no answer in ${options.timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end();
  });
  const { body, truncated } = await readBody(res, options.maxBodyBytes);
  return { status: res.statusCode ?? 0, headers: res.headers, body, truncated };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function isText(contentType: string): boolean {
  return /^text\/|[/+](json|xml|javascript)\b|^application\/(x-)?(yaml|toml|csv)/i.test(contentType);
}

/** Fetches `rawUrl` and renders it for the model; every failure is a tool error that says what to do. */
export async function webFetch(rawUrl: string, options: WebFetchOptions): Promise<ToolResult> {
  if (!options.egressSocket) {
    return {
      content:
        'this chat has no internet access; the owner can allow hosts for it in egress-allowlist.json (see nanoclaw doctor)',
      isError: true,
    };
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return {
      content: `web_fetch: "${rawUrl}" is not a URL; give a full one, e.g. https://example.com/`,
      isError: true,
    };
  }
  try {
    for (let hop = 0; ; hop++) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        return {
          content: `web_fetch: only http and https URLs can be fetched, not ${url.protocol}`,
          isError: true,
        };
      }
      const fetched = await getOnce(url, options.egressSocket, options);
      const location = fetched.headers.location;
      if (REDIRECTS.has(fetched.status) && location) {
        if (hop >= options.maxRedirects) {
          return {
            content: `web_fetch: more than ${options.maxRedirects} redirects from ${rawUrl}`,
            isError: true,
          };
        }
        url = new URL(location, url);
        continue;
      }
      const type = String(fetched.headers['content-type'] ?? 'text/plain');
      const head = `${fetched.status} ${url.href}${fetched.truncated ? ` (first ${options.maxBodyBytes} bytes)` : ''}`;
      if (!isText(type)) {
        return {
          content: `${head}\n[${type}, ${fetched.body.length} bytes: not text; download it with bash (curl -o FILE URL) to work with it]`,
          isError: fetched.status >= 400,
        };
      }
      const raw = fetched.body.toString('utf8');
      const text = /html/i.test(type) ? htmlToText(raw) : raw;
      // The proxy's own refusal (plain http), in the words the proxy uses.
      const refused = /^egress refused \(([a-z_]+)\)/.exec(raw);
      if (fetched.status === 403 && refused) return { content: refusal(403, url.hostname), isError: true };
      return {
        content: capOutput(`${head}\n\n${text}`, options.maxOutputChars),
        isError: fetched.status >= 400,
      };
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      content:
        err instanceof FetchError ? `web_fetch: ${message}` : `web_fetch ${url.href} failed: ${message}`,
      isError: true,
    };
  }
}
