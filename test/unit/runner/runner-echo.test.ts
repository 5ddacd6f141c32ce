// The bundled runner with the echo engine, driven over real stdio: boot,
// prompts, follow-ups, tool round trips, scripted failures and close.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerToHostLine } from '../../../src/core/protocol.js';
import { startAgentProcess } from '../../../src/runs/agent-process.js';
import {
  RUNNER_BUNDLE,
  bundleRunner,
  echoStart,
  isType,
  makeAgentDirs,
  spawnRunner,
  type AgentDirs,
} from '../../support/runner-fixtures.js';
import { ManualTimers } from '../../support/manual-timers.js';

let dirs: AgentDirs;

beforeAll(() => {
  bundleRunner();
  dirs = makeAgentDirs();
});
afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));

const wrapped = (...bodies: string[]): string =>
  '<messages>\n' +
  bodies
    .map((b, i) => `<message sender="user${i}" time="2025-01-01T00:00:0${i}Z">${b}</message>`)
    .join('\n') +
  '\n</messages>';

describe('runner (echo engine)', () => {
  it('emits ready at boot, answers start, takes follow-ups in the same process, and ends on close', async () => {
    const r = spawnRunner();
    await r.waitFor(isType('ready'));
    r.send(echoStart(dirs, wrapped('hello &amp; &lt;world&gt;', 'second')));
    const first = await r.waitFor(isType('output'));
    expect(first.text).toBe('echo: hello & <world>\nsecond');
    expect(first.sessionId).toMatch(/^echo-session-\d+$/);

    r.send({ type: 'message', text: wrapped('follow-up') });
    const second = await r.waitFor((l) => l.type === 'output' && l.text === 'echo: follow-up');
    expect(second).toMatchObject({ sessionId: first.sessionId });

    r.send({ type: 'close' });
    const done = await r.waitFor(isType('done'));
    expect(done).toEqual({ type: 'done', sessionId: first.sessionId });
    expect((await r.exit).code).toBe(0);
    expect(r.badLines).toEqual([]);
  });

  it('passes a non-<messages> prompt through whole', async () => {
    const r = spawnRunner();
    r.send(echoStart(dirs, 'plain prompt'));
    expect((await r.waitFor(isType('output'))).text).toBe('echo: plain prompt');
    r.child.stdin.end();
    expect((await r.exit).code).toBe(0);
    expect(r.lines.at(-1)?.type).toBe('done');
  });

  it('round-trips /tool calls, echoing ok results and errors', async () => {
    const r = spawnRunner();
    r.send(echoStart(dirs, wrapped('/tool send_message {"text":"hi there"}')));
    const call = await r.waitFor(isType('tool_call'));
    expect(call).toMatchObject({ name: 'send_message', args: { text: 'hi there' } });
    r.send({ type: 'tool_result', id: call.id, ok: true, result: { sent: 1 } });
    expect((await r.waitFor(isType('output'))).text).toBe(
      'tool send_message ok: {"sent":1}\necho: /tool send_message {"text":"hi there"}',
    );

    r.send({ type: 'message', text: '/tool list_groups {}' });
    const second = await r.waitFor((l) => l.type === 'tool_call' && l.id !== call.id);
    expect(second).toMatchObject({ name: 'list_groups' });
    r.send({ type: 'tool_result', id: (second as { id: string }).id, ok: false, error: 'not allowed' });
    await r.waitFor(
      (l) =>
        l.type === 'output' && l.text === 'tool list_groups error: not allowed\necho: /tool list_groups {}',
    );
    r.send({ type: 'close' });
    expect((await r.exit).code).toBe(0);
  });

  it('echoes "resumed <id>" once and keeps the resumed session id', async () => {
    const r = spawnRunner();
    r.send(echoStart(dirs, 'one', { sessionId: 'echo-session-42' }));
    const first = await r.waitFor(isType('output'));
    expect(first).toMatchObject({ text: 'resumed echo-session-42\necho: one', sessionId: 'echo-session-42' });
    r.send({ type: 'message', text: 'two' });
    await r.waitFor((l) => l.type === 'output' && l.text === 'echo: two');
    r.send({ type: 'close' });
    await r.exit;
  });

  it('/fail ends with done{error} and exit 1 before any output', async () => {
    const r = spawnRunner();
    r.send(echoStart(dirs, wrapped('/fail')));
    const done = await r.waitFor(isType('done'));
    expect(done.error).toBe('scripted failure');
    expect((await r.exit).code).toBe(1);
    expect(r.lines.filter((l) => l.type === 'output')).toEqual([]);
  });

  it('/crash exits 3 abruptly', async () => {
    const r = spawnRunner();
    r.send(echoStart(dirs, '/crash'));
    expect((await r.exit).code).toBe(3);
    expect(r.lines.map((l) => l.type)).toEqual(['ready']);
  });

  it('/garbage writes a non-JSON line and carries on; /sleep delays; /flood writes that many bytes', async () => {
    const r = spawnRunner();
    const started = Date.now();
    r.send(echoStart(dirs, wrapped('/garbage', '/sleep 200', '/flood 40000')));
    const answer = await r.waitFor(
      (l): l is Extract<RunnerToHostLine, { type: 'output' }> =>
        l.type === 'output' && (l.text ?? '').startsWith('echo:'),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(answer.text).toBe('echo: /garbage\n/sleep 200\n/flood 40000');
    expect(r.badLines).toHaveLength(1);
    const floodBytes = r.lines
      .filter((l) => l.type === 'output' && /^x+$/.test(l.text ?? ''))
      .reduce((n, l) => n + ((l as { text: string }).text.length ?? 0), 0);
    expect(floodBytes).toBe(40000);
    r.send({ type: 'close' });
    expect((await r.exit).code).toBe(0);
  });

  it('drops invalid host lines and keeps going', async () => {
    const r = spawnRunner();
    r.child.stdin.write('{"type":"nonsense"}\nnot json\n');
    r.send(echoStart(dirs, 'still fine'));
    expect((await r.waitFor(isType('output'))).text).toBe('echo: still fine');
    expect(r.lines.filter((l) => l.type === 'log' && l.level === 'warn')).toHaveLength(2);
    r.send({ type: 'close' });
    expect((await r.exit).code).toBe(0);
  });
});

describe('startAgentProcess driving the real runner bundle', () => {
  const spawnSpec = () => ({
    command: process.execPath,
    args: [RUNNER_BUNDLE],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    paths: {
      groupDir: dirs.groupDir,
      globalDir: dirs.globalDir,
      homeDir: dirs.homeDir,
      socketDir: dirs.socketDir,
    },
  });

  it('runs a tool round trip, a follow-up and an idle close', async () => {
    // The idle timer runs on a hand-stepped clock: it fires when the test says, never early under load.
    const timers = new ManualTimers();
    const outputs: Array<string | null> = [];
    let secondOutput: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => (secondOutput = resolve));
    let proc: ReturnType<typeof startAgentProcess> | undefined = undefined;
    proc = startAgentProcess({
      spawn: spawnSpec(),
      start: echoStart(dirs, wrapped('/tool schedule_task {"prompt":"p"}')),
      idleTimeoutMs: 300,
      runTimeoutMs: 10_000,
      maxWallMs: 60_000,
      maxOutputBytes: 1024 * 1024,
      setTimer: timers.setTimer,
      clearTimer: timers.clearTimer,
      onToolCall: async (call) => ({ ok: true, result: { name: call.name, args: call.args } }),
      onOutput: (text) => {
        outputs.push(text);
        if (outputs.length === 1) proc?.send('later');
        if (outputs.length === 2) secondOutput();
      },
      onProtocolError: () => undefined,
      onLog: () => undefined,
    });
    await answered;
    timers.advance(300);
    const result = await proc.done;
    // One answer per turn: the tool outcome and the echo together, then the follow-up's.
    expect(outputs).toEqual([
      'tool schedule_task ok: {"name":"schedule_task","args":{"prompt":"p"}}\necho: /tool schedule_task {"prompt":"p"}',
      'echo: later',
    ]);
    expect(result).toMatchObject({ ok: true, exitCode: 0, outputCount: 2 });
    expect(result.sessionId).toMatch(/^echo-session-/);
  });

  it('reports garbage and kills a /flood past maxOutputBytes', async () => {
    const reasons: string[] = [];
    const proc = startAgentProcess({
      spawn: spawnSpec(),
      start: echoStart(dirs, '/garbage\n/flood 2000000'),
      idleTimeoutMs: 5000,
      runTimeoutMs: 10_000,
      maxWallMs: 60_000,
      maxOutputBytes: 100_000,
      onToolCall: async () => ({ ok: true }),
      onOutput: () => undefined,
      onProtocolError: (reason) => reasons.push(reason),
      onLog: () => undefined,
    });
    const result = await proc.done;
    expect(reasons).toEqual(['malformed_line', 'output_limit']);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/output limit/);
  });

  it('/crash surfaces as a failed run with exit code 3', async () => {
    const proc = startAgentProcess({
      spawn: spawnSpec(),
      start: echoStart(dirs, '/crash'),
      idleTimeoutMs: 5000,
      runTimeoutMs: 10_000,
      maxWallMs: 60_000,
      maxOutputBytes: 100_000,
      onToolCall: async () => ({ ok: true }),
      onOutput: () => undefined,
      onProtocolError: () => undefined,
      onLog: () => undefined,
    });
    expect(await proc.done).toMatchObject({ ok: false, exitCode: 3 });
  });
});
