// Drives startAgentProcess against a tiny scripted runner (a plain node script
// speaking the protocol) to check framing, tool calls, limits and timers. The
// run's timers are a hand-stepped clock, and every wait is for an event, so
// the tests hold on a loaded machine.

import { spawnSync } from 'node:child_process';
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
import { ManualTimers } from '../../support/manual-timers.js';

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
    if (mode === 'stubborn') {
      process.on('SIGTERM', () => out({ type: 'log', level: 'info', msg: 'ignoring TERM' }));
      out({ type: 'log', level: 'info', msg: 'armed' });
    }
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

// Runs in its own node process under a low RLIMIT_NOFILE: it fills its fd table
// (the real condition, not a mock), starts a run, then frees the fds and starts
// another. An unhandled 'error' event would kill it before it prints "alive".
const EMFILE_HOST = String.raw`
import fs from 'node:fs';
import { startAgentProcess } from __AGENT_PROCESS__;
const runner = process.argv[2];
const start = (prompt) => startAgentProcess({
  spawn: { command: process.execPath, args: [runner], env: {}, paths: { groupDir: '/', globalDir: '/', homeDir: '/', socketDir: '/' } },
  start: { type: 'start', runId: 'r-' + prompt, prompt, group: { folder: 'main', isMain: true, name: 'M' }, assistantName: 'A', engine: 'echo', paths: { groupDir: '/', globalDir: '/', homeDir: '/' } },
  idleTimeoutMs: 60000, runTimeoutMs: 60000, maxWallMs: 60000, maxOutputBytes: 1 << 20,
  onToolCall: async () => ({ ok: true }), onOutput: () => undefined, onProtocolError: () => undefined, onLog: () => undefined,
});
const filler = [];
try { for (;;) filler.push(fs.openSync('/dev/null', 'r')); } catch (err) { console.log(JSON.stringify({ filled: err.code })); }
const starved = await start('echo').done;
console.log(JSON.stringify({ starved }));
for (const fd of filler) fs.closeSync(fd);
const proc = start('echo');
proc.close();
const healthy = await proc.done;
console.log(JSON.stringify({ healthy }));
console.log(JSON.stringify({ alive: true }));
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

/** Safety net only: a broken test fails after this instead of hanging; scale with NANOCLAW_TEST_TIME_SCALE. */
const SAFETY_MS = 30_000 * Number(process.env.NANOCLAW_TEST_TIME_SCALE ?? 1);

interface Harness {
  outputs: Array<string | null>;
  protocolErrors: Array<{ reason: ProtocolErrorReason; detail: string }>;
  toolCalls: ToolCallRequest[];
  logs: string[];
  ready: boolean;
  timers: ManualTimers;
  /** Resolves as soon as the predicate holds (checked on every callback). */
  until(predicate: () => boolean, what: string): Promise<void>;
}

function run(prompt: string, overrides: Partial<AgentProcessOptions> = {}) {
  const waiters = new Set<() => void>();
  const changed = (): void => {
    for (const wake of waiters) wake();
  };
  const timers = new ManualTimers();
  const h: Harness = {
    outputs: [],
    protocolErrors: [],
    toolCalls: [],
    logs: [],
    ready: false,
    timers,
    until: (predicate, what) =>
      new Promise<void>((resolve, reject) => {
        if (predicate()) return resolve();
        const safety = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `expected ${what}; outputs ${JSON.stringify(h.outputs)}, logs ${JSON.stringify(h.logs)}`,
            ),
          );
        }, SAFETY_MS);
        const check = (): void => {
          if (!predicate()) return;
          clearTimeout(safety);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      }),
  };
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
    maxWallMs: 60_000,
    maxOutputBytes: 1024 * 1024,
    killGraceMs: 300,
    setTimer: timers.setTimer,
    clearTimer: timers.clearTimer,
    onToolCall: async (call) => {
      h.toolCalls.push(call);
      changed();
      return { ok: true, result: { delivered: true } };
    },
    onOutput: (text) => {
      h.outputs.push(text);
      changed();
    },
    onProtocolError: (reason, detail) => {
      h.protocolErrors.push({ reason, detail });
      changed();
    },
    onLog: (_level, msg) => {
      h.logs.push(msg);
      changed();
    },
    onReady: () => {
      h.ready = true;
      changed();
    },
    ...overrides,
  });
  return { proc, h };
}

describe('startAgentProcess', () => {
  it('writes start, delivers output, passes follow-ups and finishes on close', async () => {
    const { proc, h } = run('echo');
    expect(proc.pid).toBeGreaterThan(0);
    await h.until(() => h.outputs.length === 1, 'the first output');
    expect(proc.send('second')).toBe(true);
    await h.until(() => h.outputs.length === 2, 'the second output');
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

  it('sends close after idleTimeoutMs without output, not a millisecond before', async () => {
    const { proc, h } = run('exit-on-close-only', { idleTimeoutMs: 1000 });
    await h.until(() => h.ready, 'ready');
    h.timers.advance(999);
    expect(h.logs.filter((l) => l.includes('closing'))).toEqual([]);
    h.timers.advance(1);
    expect(h.logs.filter((l) => l.includes('closing'))).toHaveLength(1);
    expect(await proc.done).toMatchObject({ ok: true, exitCode: 0 });
  });

  it('kills after runTimeoutMs without activity, escalating to SIGKILL', async () => {
    const { proc, h } = run('stubborn', { idleTimeoutMs: 100_000, runTimeoutMs: 400 });
    await h.until(() => h.logs.includes('armed'), 'the runner to arm its TERM handler');
    h.timers.advance(399);
    // Not killed yet: a killed run takes no input.
    expect(proc.send('still there?')).toBe(true);
    await h.until(() => h.outputs.includes('got: still there?'), 'the echo of the follow-up');
    h.timers.advance(400);
    expect(proc.send('too late')).toBe(false);
    await h.until(() => h.logs.includes('ignoring TERM'), 'SIGTERM to reach the runner');
    h.timers.advance(300);
    const result = await proc.done;
    expect(result).toMatchObject({ ok: false, signal: 'SIGKILL', stoppedBy: 'run_timeout' });
    expect(result.error).toMatch(/run timeout/);
  });

  it('resets the idle timer on every output', async () => {
    const { proc, h } = run('echo', { idleTimeoutMs: 1000, runTimeoutMs: 100_000 });
    await h.until(() => h.outputs.length === 1, 'the first output');
    h.timers.advance(999);
    expect(proc.send('a')).toBe(true);
    await h.until(() => h.outputs.length === 2, 'the echo of a');
    h.timers.advance(999);
    // 1998 ms since start, but only 999 since the last output.
    expect(h.logs.filter((l) => l.includes('closing'))).toEqual([]);
    h.timers.advance(1);
    expect(h.logs.filter((l) => l.includes('closing'))).toHaveLength(1);
    expect(await proc.done).toMatchObject({ ok: true, outputCount: 2 });
  });

  it('resets the run timer on every output', async () => {
    const { proc, h } = run('silent', { idleTimeoutMs: 100_000, runTimeoutMs: 1500 });
    await h.until(() => h.ready, 'ready');
    h.timers.advance(1499);
    expect(proc.send('a')).toBe(true);
    await h.until(() => h.outputs.length === 1, 'the echo of a');
    h.timers.advance(1499);
    expect(proc.send('b')).toBe(true);
    await h.until(() => h.outputs.length === 2, 'the echo of b');
    h.timers.advance(1500);
    expect(proc.send('c')).toBe(false);
    expect(await proc.done).toMatchObject({ ok: false, stoppedBy: 'run_timeout' });
  });

  it('with outputIsActivity off, only noteActivity resets the timers: forged output does not', async () => {
    const forged = run('silent', { idleTimeoutMs: 100_000, runTimeoutMs: 1500, outputIsActivity: false });
    await forged.h.until(() => forged.h.ready, 'ready');
    forged.h.timers.advance(1000);
    expect(forged.proc.send('a')).toBe(true);
    await forged.h.until(() => forged.h.outputs.length === 1, 'the echo of a');
    forged.h.timers.advance(499);
    expect(forged.proc.send('b')).toBe(true);
    forged.h.timers.advance(1);
    // 1500 ms after start despite an output at 1000.
    expect(forged.proc.send('c')).toBe(false);
    const killed = await forged.proc.done;
    expect(killed).toMatchObject({ ok: false, stoppedBy: 'run_timeout' });

    const verified = run('silent', { idleTimeoutMs: 100_000, runTimeoutMs: 1500, outputIsActivity: false });
    await verified.h.until(() => verified.h.ready, 'ready');
    verified.h.timers.advance(1000);
    verified.proc.noteActivity();
    verified.h.timers.advance(1499);
    expect(verified.proc.send('x')).toBe(true);
    verified.h.timers.advance(1);
    expect(verified.proc.send('y')).toBe(false);
    expect(await verified.proc.done).toMatchObject({ ok: false, stoppedBy: 'run_timeout' });
  });

  it('kills at maxWallMs although output keeps resetting the other timers', async () => {
    const { proc, h } = run('silent', { idleTimeoutMs: 1000, runTimeoutMs: 1000, maxWallMs: 2500 });
    await h.until(() => h.ready, 'ready');
    for (const [i, stepMs] of [900, 900, 699].entries()) {
      h.timers.advance(stepMs);
      expect(proc.send(`keep-alive ${i}`)).toBe(true);
      await h.until(() => h.outputs.length === i + 1, `the echo of keep-alive ${i}`);
    }
    proc.noteActivity();
    h.timers.advance(1);
    expect(proc.send('too late')).toBe(false);
    const result = await proc.done;
    expect(result).toMatchObject({ ok: false, stoppedBy: 'wall_time', signal: 'SIGTERM' });
    expect(result.error).toBe('killed: run exceeded its wall-clock limit of 2500 ms');
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
    expect(result).toMatchObject({
      ok: false,
      error: 'killed: shutdown',
      signal: 'SIGTERM',
      stoppedBy: 'killed',
    });
  });

  it('survives EMFILE: a run started with no free fds fails with a clear error, the host goes on', () => {
    const host = path.join(dir, 'emfile-host.mjs');
    const agentProcess = path.resolve(import.meta.dirname, '../../../src/runs/agent-process.ts');
    writeFileSync(host, EMFILE_HOST.replace('__AGENT_PROCESS__', JSON.stringify(agentProcess)));
    const child = spawnSync(
      'prlimit',
      ['--nofile=128:128', process.execPath, '--import', 'tsx', host, script],
      { encoding: 'utf8', cwd: path.resolve(import.meta.dirname, '../../..') },
    );
    expect(child.status, child.stderr).toBe(0);
    const lines = child.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, { ok?: boolean; error?: string; stoppedBy?: string }>);
    expect(lines[0]).toEqual({ filled: 'EMFILE' });
    expect(lines[1].starved).toMatchObject({ ok: false, stoppedBy: 'spawn_failed' });
    expect(lines[1].starved.error).toBe(
      `could not start the runner: spawn ${process.execPath} EMFILE (the host process has too many open files)`,
    );
    expect(lines[2].healthy).toMatchObject({ ok: true, exitCode: 0 });
    expect(lines[3]).toEqual({ alive: true });
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
