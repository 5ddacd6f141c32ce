// How much disk a group uses (its folder plus its session dir), for the
// per-group quota of SPEC §10.9. The walk is asynchronous so a big tree never
// blocks the host's event loop, it counts allocated blocks (what `du` shows,
// so sparse files cost what they really take), stops as soon as the answer is
// known, and gives up past a bounded number of entries: millions of empty files
// exhaust inodes without using blocks, so too many entries is over quota too.

import fs from 'node:fs/promises';
import path from 'node:path';

export interface DiskUsage {
  bytes: number;
  entries: number;
  /** True when the walk stopped early because `stopAboveBytes` or `maxEntries` was passed. */
  exceeded: boolean;
}

export interface MeasureOptions {
  /** Stop walking once this many bytes were counted. */
  stopAboveBytes: number;
  /** Stop (and report exceeded) once this many entries were seen. */
  maxEntries: number;
}

/** Bytes allocated under `roots` (missing roots count 0); symlinks are not followed. */
export async function measureDiskUsage(roots: string[], options: MeasureOptions): Promise<DiskUsage> {
  const usage: DiskUsage = { bytes: 0, entries: 0, exceeded: false };
  const stack = [...roots];
  while (stack.length > 0) {
    const current = stack.pop() as string;
    let stat;
    try {
      stat = await fs.lstat(current);
    } catch {
      // Gone meanwhile (the agent deletes files too) or unreadable: counts nothing.
      continue;
    }
    usage.entries++;
    usage.bytes += stat.blocks * 512;
    if (usage.bytes > options.stopAboveBytes || usage.entries > options.maxEntries) {
      usage.exceeded = true;
      return usage;
    }
    if (!stat.isDirectory()) continue;
    try {
      // Streamed, so a directory of millions of names is never held in memory at once.
      for await (const entry of await fs.opendir(current)) {
        stack.push(path.join(current, entry.name));
        if (usage.entries + stack.length > options.maxEntries) {
          usage.exceeded = true;
          return usage;
        }
      }
    } catch {
      // Unreadable directory: its entries cannot be counted; its own blocks were.
    }
  }
  return usage;
}

export function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
