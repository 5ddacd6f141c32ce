// Files the agent sends (send_file, issue 13). The agent names a file in its
// group folder; the host resolves it there (never outside: symlinks are
// resolved first, the final open refuses a symlink), checks the size cap, and
// copies it into a host-only spool (`data/outbox-files/<date>/`) that no sandbox
// mounts. The outbox sends from that copy, so what was checked is what is sent,
// even if the agent changes the file afterwards or the host restarts.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { extensionFor, formatMb, typeForFileName } from '../core/media.js';
import type { OutboundFile } from '../core/types.js';
import { SANDBOX_PATHS } from '../sandbox/mounts.js';
import { saveCapped } from './media.js';

/** The sender's file name, kept readable but safe on any disk: no control characters, at most 100 characters. */
function spoolName(name: string, type: string): string {
  const clean = [...name]
    .map((ch) => (ch.charCodeAt(0) < 0x20 || ch === '\u007f' || ch === '/' || ch === '\\' ? '_' : ch))
    .join('')
    .slice(-100);
  return clean === '' || clean.startsWith('.') ? `file.${extensionFor(type, name)}` : clean;
}

export type SpoolResult =
  | { ok: true; file: OutboundFile }
  | { ok: false; reason: 'file_not_allowed' | 'file_too_large' | 'missing'; message: string };

/**
 * Copies `agentPath` (relative to the group folder, or absolute under
 * /workspace/group) into `spoolDir`. Refuses anything that resolves outside
 * `groupDir`, is not a regular file, or is larger than `maxBytes`.
 */
export async function spoolOutboundFile(
  agentPath: string,
  groupDir: string,
  spoolDir: string,
  maxBytes: number,
  nowMs: number,
): Promise<SpoolResult> {
  const relative = path.posix.isAbsolute(agentPath)
    ? path.posix.relative(SANDBOX_PATHS.group, path.posix.normalize(agentPath))
    : path.posix.normalize(agentPath);
  const outside = {
    ok: false as const,
    reason: 'file_not_allowed' as const,
    message: `send_file refused: the file must be inside your working directory (${SANDBOX_PATHS.group})`,
  };
  if (relative === '' || relative.startsWith('..') || path.posix.isAbsolute(relative)) return outside;
  let real: string;
  let realGroup: string;
  try {
    realGroup = fs.realpathSync(groupDir);
    real = fs.realpathSync(path.join(groupDir, relative));
  } catch {
    return {
      ok: false,
      reason: 'missing',
      message: `send_file: no file "${agentPath}" in your working directory`,
    };
  }
  if (!real.startsWith(realGroup + path.sep)) return outside;
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return outside;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      return { ok: false, reason: 'missing', message: `send_file: "${agentPath}" is not a regular file` };
    }
    const tooLarge = {
      ok: false as const,
      reason: 'file_too_large' as const,
      message: `send_file refused: files larger than ${formatMb(maxBytes)} cannot be sent; make it smaller (compress or split it)`,
    };
    if (stat.size > maxBytes) return tooLarge;
    const type = typeForFileName(real);
    const day = new Date(nowMs).toISOString().slice(0, 10);
    // A folder per copy keeps the file's own name: the recipient sees "report.pdf", not an id.
    const copy = path.join(spoolDir, day, randomUUID(), spoolName(path.basename(real), type));
    const size = await saveCapped(handle.createReadStream({ autoClose: false }), copy, maxBytes);
    if (size === 'too-big') return tooLarge;
    return { ok: true, file: { path: copy, type } };
  } finally {
    await handle.close();
  }
}
