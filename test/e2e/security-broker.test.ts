// Adversarial end to end for the broker (issue 9, round 2): a prompt-injected
// agent in a non-main group floods its broker sockets with connections, and
// spends tokens by calling the model proxy directly, through the real CLI host,
// bubblewrap, runner and engine (Claude Code, and lite where the engine matters),
// with the fake model scripting it.

import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { UsageRow } from '../../src/store/api.js';
import { runCli, type CliHome } from '../support/cli.js';
import type { FakeModelServer, RecordedRequest, StaticTurn } from '../support/fake-model-server.js';
import {
  answeredToolResult,
  auditRecords,
  lastUserText,
  REAL_KEY,
  shellTool,
  useAgentFixture,
} from './agent-support.js';

const RUN_TIMEOUT_MS = 180_000;
const CONNECTION_CAP = 16;
const fixture = useAgentFixture();

async function addGroups(home: CliHome, ...folders: string[]): Promise<void> {
  for (const folder of folders) {
    const res = await runCli(
      ['groups', 'add', `local:${folder}`, '--name', folder, '--folder', folder, '--no-trigger'],
      home.env,
    );
    expect(res.code, res.stderr).toBe(0);
  }
}

/** `probe|name|a|b|…` lines of a tool result, by name. */
function probes(text: string): Map<string, string[]> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l.startsWith('probe|'))
      .map((l) => {
        const [, name, ...rest] = l.split('|');
        return [name, rest] as const;
      }),
  );
}

/**
 * Opens thousands of connections to each broker socket (and a few hundred
 * through the runner's loopback bridge), holds them, and reports how many the
 * broker still keeps open after two seconds.
 */
const FLOOD_SCRIPT = String.raw`node - <<'JS'
const net = require('net');
// Claude Code's loopback bridge is its model bridge; lite has none, so its egress bridge stands in.
const bridgePort = Number(new URL(process.env.ANTHROPIC_BASE_URL || process.env.HTTPS_PROXY).port);
const targets = [
  ['model_sock', () => net.connect('/run/nanoclaw/model.sock'), 3000],
  ['egress_sock', () => net.connect('/run/nanoclaw/egress.sock'), 3000],
  ['bridge', () => net.connect(bridgePort, '127.0.0.1'), 300],
];
(async () => {
  console.log('canary:start');
  for (const [name, open, count] of targets) {
    const sockets = [];
    const errors = {};
    const fail = (code) => (errors[code] = (errors[code] || 0) + 1);
    await Promise.all(Array.from({ length: count }, () => new Promise((resolve) => {
      let s;
      try { s = open(); } catch (e) { fail(e.code); return resolve(); }
      s.on('connect', () => { s.connected = true; resolve(); });
      s.on('error', (e) => { fail(e.code); resolve(); });
      s.on('close', () => { s.closed = true; resolve(); });
      sockets.push(s);
    })));
    await new Promise((r) => setTimeout(r, 2000));
    const connected = sockets.filter((s) => s.connected).length;
    const alive = sockets.filter((s) => s.connected && !s.closed).length;
    console.log('probe|' + name + '|' + count + '|' + connected + '|' + alive + '|' + JSON.stringify(errors));
    await Promise.all(sockets.map((s) => new Promise((r) => { if (s.closed) return r(); s.on('close', r); s.destroy(); })));
  }
  console.log('canary:end');
})();
JS`;

describe('broker connection flood (issue 9 item 1)', () => {
  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `caps each broker socket per run, audits one record per socket, and the host and other groups go on (${engine})`,
      async () => {
        let floodResult = '';
        const { home } = await fixture.setUp((request: RecordedRequest): StaticTurn => {
          const result = answeredToolResult(request);
          if (result) {
            floodResult = result.text;
            return { text: 'family survived' };
          }
          if (lastUserText(request).includes('flood the broker'))
            return { toolUse: shellTool(engine, FLOOD_SCRIPT, 120_000) };
          if (lastUserText(request).includes('hello work')) return { text: 'work answer' };
          return { text: 'ok' };
        }, engine);
        home.writeConfig({ maxRetries: 0, retryBaseMs: 50, maxBrokerConnectionsPerRun: CONNECTION_CAP });
        fs.writeFileSync(
          path.join(home.env.NANOCLAW_CONFIG_DIR!, 'egress-allowlist.json'),
          JSON.stringify({ groups: { family: ['allowed.test'] } }),
        );
        await addGroups(home, 'family', 'work');

        const chat = fixture.chat({ ...home.env, LOG_LEVEL: 'info' });
        chat.send({ text: 'flood the broker', chat: 'local:family' });
        await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:family'), RUN_TIMEOUT_MS);
        // The same host process, after the attack: another group's run still works.
        chat.send({ text: 'hello work', chat: 'local:work' });
        await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:work'), RUN_TIMEOUT_MS);
        expect(await chat.end()).toBe(0);
        expect(chat.lines).toContainEqual({ chat: 'local:family', text: 'family survived' });
        expect(chat.lines).toContainEqual({ chat: 'local:work', text: 'work answer' });

        expect(floodResult, floodResult).toContain('canary:end');
        const seen = probes(floodResult);
        for (const name of ['model_sock', 'egress_sock', 'bridge']) {
          const [attempted, connected, alive] = (seen.get(name) ?? []).map(Number);
          expect(attempted, `${name}: ${floodResult}`).toBeGreaterThanOrEqual(300);
          // The flood really reached the broker, and the broker kept no more than the cap open.
          expect(connected, `${name}: ${floodResult}`).toBeGreaterThan(CONNECTION_CAP);
          expect(alive, `${name}: ${floodResult}`).toBeGreaterThan(0);
          expect(alive, `${name}: ${floodResult}`).toBeLessThanOrEqual(CONNECTION_CAP);
        }

        // One record per run and socket, however many connections were refused; the count is in the log.
        const records = (await auditRecords(home)).filter((r) => r.reason === 'connection_limit');
        expect(records.map((r) => [r.group, r.action, r.target])).toEqual([
          ['family', 'model_request', null],
          ['family', 'egress', null],
        ]);
        expect(new Set(records.map((r) => r.runId)).size).toBe(1);
        const summaries = chat.stderr
          .split('\n')
          .filter((l) => l.includes('broker refusals in this run'))
          .map((l) => JSON.parse(l) as { action: string; reason: string; refused: number });
        const refused = (action: string): number =>
          summaries.find((s) => s.action === action && s.reason === 'connection_limit')?.refused ?? 0;
        expect(refused('model_request'), chat.stderr.slice(-2000)).toBeGreaterThan(100);
        expect(refused('egress'), chat.stderr.slice(-2000)).toBeGreaterThan(100);
      },
      RUN_TIMEOUT_MS * 2,
    );
});

/**
 * Calls the model proxy directly, as the agent's own client would, 40 times, and
 * logs each status to the group folder (the agent's next turn is itself refused,
 * so the tool result never reaches the model).
 */
const SPEND_SCRIPT = String.raw`for i in $(seq 1 40); do
  code=$(curl -s -o /tmp/answer -w '%{http_code}' -X POST -H "x-api-key: $ANTHROPIC_API_KEY" \
    -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \
    -d '{"model":"claude-fake","max_tokens":16,"messages":[{"role":"user","content":"spend"}]}' \
    "$ANTHROPIC_BASE_URL/v1/messages?beta=true")
  echo "probe|call|$code|$(head -c 300 /tmp/answer | tr '\n|' '  ')" >> /workspace/group/spend.log
done
echo canary:end >> /workspace/group/spend.log`;

/**
 * Spending stopped within one request of the budget (the one that crossed it), usage matches
 * what the model answered, and the refusal is audited once.
 */
async function expectStoppedAtBudget(
  home: CliHome,
  fake: FakeModelServer,
  budget: number,
  perRequest: number,
): Promise<void> {
  const usage = await runCli(['usage', '--json', '--group', 'family'], home.env);
  const [row] = usage.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as UsageRow);
  const total = row.inputTokens + row.outputTokens + row.cacheReadTokens + row.cacheWriteTokens;
  expect(total).toBeGreaterThanOrEqual(budget);
  expect(total).toBeLessThan(budget + perRequest);
  const answered = fake.requests.filter((r) => r.path === '/v1/messages').length;
  expect(row.requests).toBe(answered);
  expect(total).toBe(answered * perRequest);

  const records = (await auditRecords(home)).filter((r) => r.reason === 'budget_exceeded');
  expect(records.map((r) => [r.group, r.action, r.target])).toEqual([
    ['family', 'model_request', '/v1/messages'],
  ]);
}

describe('daily token budget enforced per model request (issue 9 item 5)', () => {
  it(
    'refuses direct model calls once the group is over budget, with an API error, one audit record and no overspend',
    async () => {
      const budget = 2_000;
      // Every answer of the fake model reports 100 + 20 + 10 + 5 = 135 tokens.
      const perRequest = 135;
      const { fake, home } = await fixture.setUp((request: RecordedRequest): StaticTurn => {
        if (answeredToolResult(request)) return { text: 'spent' };
        if (lastUserText(request).includes('spend it all'))
          return { toolUse: { name: 'Bash', input: { command: SPEND_SCRIPT, timeout: 120_000 } } };
        return { text: 'ok' };
      });
      home.writeConfig({ maxRetries: 0, retryBaseMs: 50 });
      await addGroups(home, 'family');
      const set = await runCli(['groups', 'budget', 'local:family', String(budget)], home.env);
      expect(set.code, set.stderr).toBe(0);

      const chat = fixture.chat(home.env);
      chat.send({ text: 'spend it all', chat: 'local:family' });
      await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:family'), RUN_TIMEOUT_MS);
      expect(await chat.end()).toBe(0);
      // The agent's own next turn hit the budget too, and the chat was told why.
      expect(chat.lines.map((l) => l.chat)).toEqual(['local:family']);
      expect(chat.lines[0].text).toContain(
        `the daily token budget of this chat (${budget} tokens) is used up`,
      );

      const logFile = path.join(home.dir, 'groups', 'family', 'spend.log');
      const spendResult = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      expect(spendResult, chat.stderr.slice(-3000)).toContain('canary:end');
      const calls = spendResult
        .split('\n')
        .filter((l) => l.startsWith('probe|call|'))
        .map((l) => l.split('|'));
      expect(calls).toHaveLength(40);
      const codes = calls.map((c) => c[2]);
      const firstRefused = codes.indexOf('402');
      // Some got through, then every later one was refused: the check runs before each request.
      expect(firstRefused, codes.join(',')).toBeGreaterThan(0);
      expect(codes.slice(0, firstRefused).every((c) => c === '200')).toBe(true);
      expect(codes.slice(firstRefused).every((c) => c === '402')).toBe(true);
      expect(JSON.parse(calls[firstRefused][3])).toEqual({
        type: 'error',
        error: {
          type: 'billing_error',
          message: `the daily token budget of this chat (${budget} tokens) is used up; it resets at midnight UTC`,
        },
      });

      await expectStoppedAtBudget(home, fake, budget, perRequest);
    },
    RUN_TIMEOUT_MS,
  );
});

describe('daily token budget enforced per model request, lite engine (issue 9 item 5, issue 14)', () => {
  // lite's shell has no model key to spend with (the placeholder stays in the runner), so here the
  // agent spends through its own turns: a tool loop that never ends by itself.
  it(
    'stops a looping lite agent at the first request over budget, tells the chat, audits once, no overspend',
    async () => {
      const budget = 2_000;
      const perRequest = 135;
      const { fake, home } = await fixture.setUp((request: RecordedRequest): StaticTurn => {
        if (answeredToolResult(request) || lastUserText(request).includes('spend it all'))
          return { toolUse: shellTool('lite', 'echo spent') };
        return { text: 'ok' };
      }, 'lite');
      home.writeConfig({ maxRetries: 0, retryBaseMs: 50 });
      await addGroups(home, 'family');
      const set = await runCli(['groups', 'budget', 'local:family', String(budget)], home.env);
      expect(set.code, set.stderr).toBe(0);

      const chat = fixture.chat(home.env);
      chat.send({ text: 'spend it all', chat: 'local:family' });
      await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:family'), RUN_TIMEOUT_MS);
      expect(await chat.end()).toBe(0);
      expect(chat.lines.map((l) => l.chat)).toEqual(['local:family']);
      expect(chat.lines[0].text, chat.stderr.slice(-3000)).toContain(
        `the daily token budget of this chat (${budget} tokens) is used up`,
      );

      await expectStoppedAtBudget(home, fake, budget, perRequest);
    },
    RUN_TIMEOUT_MS,
  );
});

/**
 * An upstream in front of the fake model that misbehaves on request: for a body
 * carrying a marker it echoes the headers it received (the real key among them)
 * in a JSON error, an SSE stream cut mid-key, or a response header. It records
 * every URL it was asked for.
 */
async function startEchoingUpstream(
  fakeUrl: string,
): Promise<{ url: string; urls: string[]; close(): void }> {
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      urls.push(req.url ?? '');
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      const key = String(req.headers['x-api-key']);
      if (text.includes('ECHO-ME-JSON')) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', echoed: req.headers } }),
        );
      } else if (text.includes('ECHO-ME-SSE')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const event = `event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"${key}|${Buffer.from(key).toString('base64')}"}}\n\n`;
        const cut = event.indexOf(key) + 10;
        res.write(event.slice(0, cut));
        setTimeout(() => res.end(event.slice(cut)), 20);
      } else if (text.includes('ECHO-ME-HEADER')) {
        res.writeHead(200, {
          'content-type': 'application/json',
          'x-echo-key': key,
          'x-echo-basic': `Basic ${Buffer.from(`user:${key}`).toString('base64')}`,
        });
        res.end('{}');
      } else {
        const target = new URL(req.url ?? '/', fakeUrl);
        const upstream = http.request(target, { method: req.method, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.end(body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    urls,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const PROTOCOL_SCRIPT = String.raw`B="$ANTHROPIC_BASE_URL"; K="$ANTHROPIC_API_KEY"
# The markers are put together at run time: the script's own text reaches the upstream in the next turn.
M=ECHO
post() { curl -s -i -X POST -H "x-api-key: $K" -H 'content-type: application/json' -d "$2" "$B$1"; echo; }
echo "== json"; post '/v1/messages?beta=true' "{\"marker\":\"$M-ME-JSON\"}"
echo "== sse"; post '/v1/messages?beta=true' "{\"marker\":\"$M-ME-SSE\"}"
echo "== header"; post '/v1/messages?beta=true' "{\"marker\":\"$M-ME-HEADER\"}"
echo "== path"; post '/v1/messages?x=/../../v1/models' '{}'
echo "== smuggle"
port=$(echo "$B" | sed 's/.*://')
# In a subshell: a failed connect would otherwise end the whole script (bash exits on a
# failed exec redirection) and hide what happened; a refused connect is retried twice.
for try in 1 2 3; do
  ( exec 3<>/dev/tcp/127.0.0.1/$port || exit 7
    printf 'POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' "$K" >&3
    timeout 10 cat <&3 ) && break
  echo "(connect try $try failed)"; sleep 1
done
echo
echo "== end"`;

describe('model proxy protocol attacks from the agent (issue 9 items 10, 11, 12)', () => {
  it(
    'scrubs echoed credentials, refuses smuggled requests and off-path queries, and audits both',
    async () => {
      let toolText = '';
      const { fake, home } = await fixture.setUp((request: RecordedRequest): StaticTurn => {
        const result = answeredToolResult(request);
        if (result) {
          toolText = result.text;
          return { text: 'probed' };
        }
        if (lastUserText(request).includes('probe the proxy'))
          return { toolUse: { name: 'Bash', input: { command: PROTOCOL_SCRIPT, timeout: 60_000 } } };
        return { text: 'ok' };
      });
      const echo = await startEchoingUpstream(fake.url);
      try {
        home.env.ANTHROPIC_BASE_URL = echo.url;
        home.writeConfig({ maxRetries: 0, retryBaseMs: 50 });
        await addGroups(home, 'family');
        const chat = fixture.chat(home.env);
        chat.send({ text: 'probe the proxy', chat: 'local:family' });
        await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:family'), RUN_TIMEOUT_MS);
        expect(await chat.end()).toBe(0);
        expect(chat.lines, chat.stderr.slice(-3000)).toContainEqual({ chat: 'local:family', text: 'probed' });

        expect(toolText, toolText).toContain('== end');
        const section = (name: string): string =>
          toolText.slice(
            toolText.indexOf(`== ${name}`),
            toolText.indexOf('== ', toolText.indexOf(`== ${name}`) + 3),
          );
        // Item 11: the upstream echoed the real key three ways; the agent saw none of it.
        expect(toolText).not.toContain(REAL_KEY);
        expect(toolText).not.toContain(Buffer.from(REAL_KEY).toString('base64').slice(0, 20));
        expect(toolText).not.toContain(Buffer.from(`user:${REAL_KEY}`).toString('base64').slice(8, 28));
        for (let i = 0; i + 16 <= REAL_KEY.length; i++)
          expect(toolText).not.toContain(REAL_KEY.slice(i, i + 16));
        expect(section('json')).toMatch(/^HTTP\/1\.1 400/m);
        expect(section('json')).toContain('"x-api-key":"[redacted]"');
        // (A base64 form's last character mixes in padding bits; it carries under 6 bits of the key.)
        expect(section('sse')).toMatch(/"text":"\[redacted\]\|\[redacted\][A-Za-z0-9+/]?=*"/);
        expect(section('header')).toMatch(/^x-echo-key: \[redacted\]/im);
        // Item 12: an off-path query is refused, never forwarded; the upstream saw only canonical targets.
        expect(section('path')).toMatch(/^HTTP\/1\.1 403/m);
        expect(echo.urls.length).toBeGreaterThan(3);
        for (const url of echo.urls)
          expect(['/v1/messages?beta=true', '/v1/messages/count_tokens?beta=true']).toContain(url);
        expect(echo.urls.some((u) => u.includes('models'))).toBe(false);
        // Item 10: a request Node's parser rejects gets a 400 and an audit record.
        expect(section('smuggle')).toMatch(/^HTTP\/1\.1 400/m);
        expect(section('smuggle')).toContain('malformed HTTP request');

        const records = (await auditRecords(home)).filter((r) => r.action === 'model_request');
        expect(records.map((r) => [r.group, r.reason, r.target])).toEqual([
          // Stored canonical and short (no attacker-chosen query string), per the audit rules.
          ['family', 'path_not_allowed', '/v1/messages'],
          ['family', 'bad_request', null],
        ]);
      } finally {
        echo.close();
      }
    },
    RUN_TIMEOUT_MS,
  );
});

/**
 * lite's shell holds no model key and has no TCP bridge to the model, so it talks raw HTTP to the
 * broker's model socket: an off-path query and a smuggled request.
 */
const LITE_PROTOCOL_SCRIPT = String.raw`node - <<'JS'
const net = require('net');
const send = (name, raw) => new Promise((resolve) => {
  const s = net.connect('/run/nanoclaw/model.sock');
  let out = '';
  s.on('connect', () => s.write(raw));
  s.on('data', (d) => (out += d));
  s.on('error', (e) => (out += 'error ' + e.code));
  s.on('close', () => { console.log('== ' + name + '\n' + out); resolve(); });
  setTimeout(() => s.destroy(), 10000).unref();
});
(async () => {
  await send('path', 'POST /v1/messages?x=/../../v1/models HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
  await send('smuggle', 'POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  console.log('== end');
})();
JS`;

describe('model proxy protocol attacks, lite engine (issue 9 items 10, 12, issue 14)', () => {
  // Item 11 (scrubbing echoed credentials) is the broker's alone and observed through Claude Code's
  // shell above; lite's shell holds no key, so the upstream never answers it anything to echo.
  it(
    "refuses the lite shell's keyless off-path and smuggled requests to the model socket, and audits both",
    async () => {
      let toolText = '';
      const { fake, home } = await fixture.setUp((request: RecordedRequest): StaticTurn => {
        const result = answeredToolResult(request);
        if (result) {
          toolText = result.text;
          return { text: 'probed' };
        }
        if (lastUserText(request).includes('probe the proxy'))
          return { toolUse: shellTool('lite', LITE_PROTOCOL_SCRIPT) };
        return { text: 'ok' };
      }, 'lite');
      const echo = await startEchoingUpstream(fake.url);
      try {
        home.env.ANTHROPIC_BASE_URL = echo.url;
        home.writeConfig({ maxRetries: 0, retryBaseMs: 50 });
        await addGroups(home, 'family');
        const chat = fixture.chat(home.env);
        chat.send({ text: 'probe the proxy', chat: 'local:family' });
        await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:family'), RUN_TIMEOUT_MS);
        expect(await chat.end()).toBe(0);
        expect(chat.lines, chat.stderr.slice(-3000)).toContainEqual({ chat: 'local:family', text: 'probed' });

        expect(toolText, toolText).toContain('== end');
        expect(toolText).not.toContain(REAL_KEY);
        const section = (name: string): string =>
          toolText.slice(
            toolText.indexOf(`== ${name}`),
            toolText.indexOf('== ', toolText.indexOf(`== ${name}`) + 3),
          );
        // Item 12: without the run's key the off-path query is refused before its path is even looked at.
        expect(section('path')).toMatch(/^HTTP\/1\.1 401/m);
        // Only the runner's own two turns reached the upstream, at the canonical path.
        expect(echo.urls).toEqual(['/v1/messages', '/v1/messages']);
        // Item 10: a request Node's parser rejects gets a 400 and an audit record.
        expect(section('smuggle')).toMatch(/^HTTP\/1\.1 400/m);
        expect(section('smuggle')).toContain('malformed HTTP request');

        const records = (await auditRecords(home)).filter((r) => r.action === 'model_request');
        expect(records.map((r) => [r.group, r.reason, r.target])).toEqual([
          ['family', 'bad_placeholder_key', '/v1/messages'],
          ['family', 'bad_request', null],
        ]);
      } finally {
        echo.close();
      }
    },
    RUN_TIMEOUT_MS,
  );
});
