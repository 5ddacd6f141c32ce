// The quota walk: counts allocated blocks like du, stops early once over, and
// treats a flood of (empty) entries as over quota too.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { measureDiskUsage } from '../../../src/runs/disk-usage.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-usage-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

describe('measureDiskUsage', () => {
  it('sums allocated bytes under every root, ignoring missing roots and symlink targets', async () => {
    fs.mkdirSync(path.join(dir, 'a', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a', 'deep', 'one'), Buffer.alloc(2 * MiB, 1));
    fs.mkdirSync(path.join(dir, 'b'));
    fs.writeFileSync(path.join(dir, 'b', 'two'), Buffer.alloc(MiB, 1));
    const outside = path.join(dir, 'outside');
    fs.writeFileSync(outside, Buffer.alloc(4 * MiB, 1));
    fs.symlinkSync(outside, path.join(dir, 'b', 'link'));
    const usage = await measureDiskUsage(
      [path.join(dir, 'a'), path.join(dir, 'b'), path.join(dir, 'missing')],
      { stopAboveBytes: 100 * MiB, maxEntries: 1000 },
    );
    expect(usage.exceeded).toBe(false);
    expect(usage.bytes).toBeGreaterThanOrEqual(3 * MiB);
    expect(usage.bytes).toBeLessThan(4 * MiB);
  });

  it('counts a sparse file by what it occupies, not by its length', async () => {
    const fd = fs.openSync(path.join(dir, 'sparse'), 'w');
    fs.ftruncateSync(fd, 1024 * MiB);
    fs.closeSync(fd);
    const usage = await measureDiskUsage([dir], { stopAboveBytes: MiB, maxEntries: 1000 });
    expect(usage.exceeded).toBe(false);
  });

  it('stops as soon as the byte limit is passed', async () => {
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, `f${i}`), Buffer.alloc(MiB, 1));
    const usage = await measureDiskUsage([dir], { stopAboveBytes: 3 * MiB, maxEntries: 1000 });
    expect(usage.exceeded).toBe(true);
    expect(usage.entries).toBeLessThan(10);
  });

  it('reports too many entries as exceeded, even when they take no blocks', async () => {
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `e${i}`), '');
    const usage = await measureDiskUsage([dir], { stopAboveBytes: 100 * MiB, maxEntries: 100 });
    expect(usage).toMatchObject({ exceeded: true });
    expect(usage.entries).toBeLessThanOrEqual(100);
  });
});
