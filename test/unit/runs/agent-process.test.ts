// Drives startAgentProcess against a tiny scripted runner (a plain node script
// speaking the protocol) to check framing, tool calls, limits and timers.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartLine } from '../../../src/core/protocol.js';
import {
  startAgentProcess,
  type AgentProcessOptions,
  type ProtocolErrorReason,
  type ToolCallRequest,
} from '../../../src/runs/agent-process.js';

// The fake runner's behaviour is chosen by the start prompt.
const FAKE_RUNNER = String.raw`
import readline from 'node:readline';
const out = (line) => process.stdout.write(JSON.stringify(line) + '\n');
// Exits once stdout has drained; a bare process.exit can cut a pending pipe write.
const quit = (code) => process.stdout.write('', () => process.exit(code));
const rl = readline.createInterface({ input: process.stdin });
let mode;
const sid = 'fake-session';
out({ type: 'ready' });
rl.on('line', (raw) => {
  const line = JSON.parse(raw);
  if (line.type === 'start') {
    mode = line.prompt;
    if (mode === 'echo') out({ type: 'output', text: 'got: ' + mode, sessionId: sid });
    if (mode === 'tool') out({ type: 'tool_call', id: 'call:ünïcode-1', name: 'send_message', args: { text: 'hi' } });
    if (mode === 'malformed') {
      process.stdout.write('not json at all\n');
      out({ type: 'bogus', x: 1 });
      out({ type: 'output', text: 42 });
      out({ type: 'output', text: 'after', sessionId: sid });
      out({ type: 'done', sessionId: sid });
      quit(0);
    }
    if (mode === 'overlong') {
      process.stdout.write(JSON.stringify({ type: 'output', text: 'y'.repeat(300 * 1024) }) + '\n');
      out({ type: 'output', text: 'after', sessionId: sid });
      out({ type: 'done', sessionId: sid });
      quit(0);
    }
    if (mode === 'flood') {
      const line = JSON.stringify({ type: 'output', text: 'z'.repeat(8000) }) + '\n';
      const pump = () => { while (process.stdout.write(line)) {} process.stdout.once('drain', pump); };
      pump();
    }
    if (mode === 'trickle') {
      let n = 0;
      const t = setInterval(() => {
        out({ type: 'output', text: 'tick ' + ++n });
        if (n === 6) { clearInterval(t); out({ type: 'done' }); process.exit(0); }
      }, 100);
    }
    if (mode === 'stubborn') process.on('SIGTERM', () => out({ type: 'log', level: 'info', msg: 'ignoring TERM' }));
    if (mode.startsWith('exit:')) process.exit(Number(mode.slice(5)));
    if (mode === 'fail') { out({ type: 'done', error: 'it broke' }); process.exit(1); }
    if (mode === 'stderr') { process.stderr.write('something went wrong here\n'); process.exit(2); }
  } else if (line.type === 'message') {
    out({ type: 'output', text: 'got: ' + line.text, sessionId: sid });
  } else if (line.type === 'tool_result') {
    out({ type: 'output', text: JSON.stringify(line), sessionId: sid });
    out({ type: 'done', sessionId: sid });
    process.exit(0);
  } else if (line.type === 'close') {
    if (mode === 'silent' || mode === 'stubborn') return;
    out({ type: 'done', sessionId: sid });
    process.exit(0);
  }
});
rl.on('close', () => { if (mode !== 'stubborn') process.exit(0); });
`;

let dir: string;
let script: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'agent-process-'));
  script = path.join(dir, 'fake-runner.mjs');
  writeFileSync(script, FAKE_RUNNER);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startLine(prompt: string): StartLine {
  return {
    type: 'start',
    runId: `run-${prompt}`,
    prompt,
    group: { folder: 'main', isMain: true, name: 'Main' },
    assistantName: 'Andy',
    engine: 'echo',
    paths: { groupDir: dir, globalDir: dir, homeDir: dir },
  };
}

interface Harness {
  outputs: Array<string | null>;
  protocolErrors: Array<{ reason: ProtocolErrorReason; detail: string }>;
  toolCalls: ToolCallRequest[];
  logs: string[];
  ready: boolean;
}

function run(prompt: string, overrides: Partial<AgentProcessOptions> = {}) {
  const h: Harness = { outputs: [], protocolErrors: [], toolCalls: [], logs: [], ready: false };
  const proc = startAgentProcess({
    spawn: {
      command: process.execPath,
      args: [script],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      paths: { groupDir: dir, globalDir: dir, homeDir: dir, socketDir: dir },
    },
    start: startLine(prompt),
    idleTimeoutMs: 10_000,
    runTimeoutMs: 20_000,
    maxOutputBytes: 1024 * 1024,
    killGraceMs: 300,
    onToolCall: async (call) => {
      h.toolCalls.push(call);
      return { ok: true, result: { delivered: true } };
    },
    onOutput: (text) => {
      h.outputs.push(text);
    },
    onProtocolError: (reason, detail) => h.protocolErrors.push({ reason, detail }),
    onLog: (_level, msg) => h.logs.push(msg),
    onReady: () => {
      h.ready = true;
    },
    ...overrides,
  });
  return { proc, h };
}

describe('startAgentProcess', () => {
  it('writes start, delivers output, passes follow-ups and finishes on close', async () => {
    const { proc, h } = run('echo');
    expect(proc.pid).toBeGreaterThan(0);
    await waitFor(() => h.outputs.length === 1);
    expect(proc.send('second')).toBe(true);
    await waitFor(() => h.outputs.length === 2);
    proc.close();
    expect(proc.send('too late')).toBe(false);
    const result = await proc.done;
    expect(h.ready).toBe(true);
    expect(h.outputs).toEqual(['got: echo', 'got: second']);
    expect(result).toMatchObject({ ok: true, sessionId: 'fake-session', exitCode: 0, outputCount: 2 });
  });

  it('answers a tool call with the exact id and the onToolCall result', async () => {
    const { proc, h } = run('tool');
    const result = await proc.done;
    expect(h.toolCalls).toEqual([{ id: 'call:ünïcode-1', name: 'send_message', args: { text: 'hi' } }]);
    expect(JSON.parse(h.outputs[0] ?? '')).toEqual({
      type: 'tool_result',
      id: 'call:ünïcode-1',
      ok: true,
      result: { delivered: true },
    });
    expect(result.ok).toBe(true);
  });

  it('turns a throwing onToolCall into an error answer', async () => {
    const { proc, h } = run('tool', {
      onToolCall: async () => {
        throw new Error('no such chat');
      },
    });
    await proc.done;
    expect(JSON.parse(h.outputs[0] ?? '')).toMatchObject({ ok: false, error: 'no such chat' });
  });

  it('drops malformed and unknown lines, reports them, and goes on', async () => {
    const { proc, h } = run('malformed');
    const result = await proc.done;
    expect(h.protocolErrors.map((e) => e.reason)).toEqual([
      'malformed_line',
      'unknown_message_type',
      'malformed_line',
    ]);
    expect(h.outputs).toEqual(['after']);
    expect(result.ok).toBe(true);
  });

  it('drops an overlong line without stopping the run', async () => {
    const { proc, h } = run('overlong');
    const result = await proc.done;
    expect(h.protocolErrors).toHaveLength(1);
    expect(h.protocolErrors[0]?.reason).toBe('malformed_line');
    expect(h.outputs).toEqual(['after']);
    expect(result.ok).toBe(true);
  });

  it('kills a run whose output passes maxOutputBytes', async () => {
    const { proc, h } = run('flood', { maxOutputBytes: 200_000 });
    const result = await proc.done;
    expect(h.protocolErrors.some((e) => e.reason === 'output_limit')).toBe(true);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/output limit/);
    expect(result.signal).toBe('SIGTERM');
    // Nothing past the limit is parsed.
    expect(h.outputs.length).toBeLessThanOrEqual(25);
  });

  it('sends close after idleTimeoutMs without output', async () => {
    const started = Date.now();
    const { proc } = run('exit-on-close-only', { idleTimeoutMs: 300 });
    const result = await proc.done;
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(result).toMatchObject({ ok: true, exitCode: 0 });
  });

  it('kills after runTimeoutMs without output, escalating to SIGKILL', async () => {
    const { proc, h } = run('stubborn', { idleTimeoutMs: 100, runTimeoutMs: 400 });
    const result = await proc.done;
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/run timeout/);
    expect(result.signal).toBe('SIGKILL');
    expect(h.logs).toContain('ignoring TERM');
  });

  it('resets both timers on every output', async () => {
    // Six outputs 100 ms apart outlive both a 250 ms idle and a 350 ms run timeout.
    const { proc, h } = run('trickle', { idleTimeoutMs: 250, runTimeoutMs: 350 });
    const result = await proc.done;
    expect(h.outputs).toHaveLength(6);
    expect(result.ok).toBe(true);
  });

  it('reports exit codes and the runner error', async () => {
    const crashed = await run('exit:3').proc.done;
    expect(crashed).toMatchObject({ ok: false, exitCode: 3 });
    expect(crashed.error).toMatch(/code 3/);

    const failed = await run('fail').proc.done;
    expect(failed).toMatchObject({ ok: false, exitCode: 1, error: 'it broke' });

    const noisy = await run('stderr').proc.done;
    expect(noisy.error).toMatch(/something went wrong here/);
  });

  it('kill() ends the run as not ok', async () => {
    const { proc } = run('silent');
    proc.kill('shutdown');
    const result = await proc.done;
    expect(result).toMatchObject({ ok: false, error: 'killed: shutdown', signal: 'SIGTERM' });
  });

  it('fails cleanly when the command does not exist', async () => {
    const { proc } = run('echo', {
      spawn: {
        command: path.join(dir, 'no-such-binary'),
        args: [],
        env: {},
        paths: { groupDir: dir, globalDir: dir, homeDir: dir, socketDir: dir },
      },
    });
    const result = await proc.done;
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/could not start the runner/);
  });
});

async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
