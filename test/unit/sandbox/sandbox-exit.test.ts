// The /proc reading behind "a bwrap run has ended": which process is the namespace's
// init, and when it counts as gone. A fake /proc keeps every state reachable.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { isGone, onlyChildOf, readProcStat, waitUntilGone } from '../../../src/sandbox/sandbox-exit.js';

let procDir: string;

function writeProc(pid: number, opts: { ppid: number; state?: string; start?: number; comm?: string }): void {
  fs.mkdirSync(path.join(procDir, String(pid), 'task', String(pid)), { recursive: true });
  // Fields 3..22 of /proc/PID/stat: state, ppid, then 17 fields we do not read, then starttime.
  const filler = Array.from({ length: 17 }, () => '0').join(' ');
  const line = `${pid} (${opts.comm ?? 'bwrap'}) ${opts.state ?? 'S'} ${opts.ppid} ${filler} ${opts.start ?? 1000} 0 0\n`;
  fs.writeFileSync(path.join(procDir, String(pid), 'stat'), line);
}

function setChildren(pid: number, children: number[]): void {
  fs.writeFileSync(
    path.join(procDir, String(pid), 'task', String(pid), 'children'),
    `${children.join(' ')} `,
  );
}

afterEach(() => fs.rmSync(procDir, { recursive: true, force: true }));

describe('sandbox exit', () => {
  it('reads state, parent and start time, even with spaces and parentheses in the name', () => {
    procDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-proc-'));
    writeProc(42, { ppid: 7, state: 'R', start: 4321, comm: 'a) (b c' });
    expect(readProcStat(procDir, 42)).toEqual({ state: 'R', ppid: 7, startTicks: '4321' });
    expect(readProcStat(procDir, 43)).toBeNull();
  });

  it('finds the one live child from the children file, ignoring zombies', () => {
    procDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-proc-'));
    writeProc(10, { ppid: 1 });
    writeProc(11, { ppid: 10, state: 'Z' });
    writeProc(12, { ppid: 10, start: 555 });
    setChildren(10, [11, 12]);
    expect(onlyChildOf(10, procDir)).toEqual({ pid: 12, startTicks: '555' });
    writeProc(13, { ppid: 10 });
    setChildren(10, [11, 12, 13]);
    expect(onlyChildOf(10, procDir)).toBeNull();
  });

  it('scans every process when the kernel has no children file', () => {
    procDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-proc-'));
    writeProc(10, { ppid: 1 });
    writeProc(20, { ppid: 10, start: 77 });
    writeProc(30, { ppid: 20 });
    expect(onlyChildOf(10, procDir)).toEqual({ pid: 20, startTicks: '77' });
    expect(onlyChildOf(30, procDir)).toBeNull();
  });

  it('counts a process as gone when it vanished, is a zombie, or its pid was reused', () => {
    procDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-proc-'));
    writeProc(50, { ppid: 1, start: 900 });
    const stamp = { pid: 50, startTicks: '900' };
    expect(isGone(stamp, procDir)).toBe(false);
    writeProc(50, { ppid: 1, start: 900, state: 'Z' });
    expect(isGone(stamp, procDir)).toBe(true);
    writeProc(50, { ppid: 1, start: 901 });
    expect(isGone(stamp, procDir)).toBe(true);
    fs.rmSync(path.join(procDir, '50'), { recursive: true });
    expect(isGone(stamp, procDir)).toBe(true);
  });

  it('waits while the process lives and gives up after the timeout', async () => {
    procDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-proc-'));
    writeProc(60, { ppid: 1, start: 5 });
    const stamp = { pid: 60, startTicks: '5' };
    const slept: number[] = [];
    // The process exits during the third pause.
    const sleep = async (ms: number): Promise<void> => {
      slept.push(ms);
      if (slept.length === 3) writeProc(60, { ppid: 1, start: 5, state: 'Z' });
    };
    expect(await waitUntilGone(stamp, { timeoutMs: 10_000, procDir, sleep })).toBe(true);
    expect(slept).toEqual([5, 10, 20]);

    writeProc(60, { ppid: 1, start: 5 });
    const pauses: number[] = [];
    const never = async (ms: number): Promise<void> => void pauses.push(ms);
    expect(await waitUntilGone(stamp, { timeoutMs: 1000, procDir, sleep: never })).toBe(false);
    expect(pauses.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1000);
    expect(Math.max(...pauses)).toBe(100);
  });
});
