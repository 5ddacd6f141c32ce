// Host-start fd hygiene (SPEC §10.9). Whatever the host inherits from its
// launcher without FD_CLOEXEC (a shell's `exec 50<dir`, a supervisor's pipe)
// would pass through every spawn into every sandbox: libuv never closes such fds
// in a child, and Node cannot set FD_CLOEXEC. Node's and libuv's own fds are all
// opened close-on-exec, so at start-up a non-close-on-exec fd above 2 can only
// have been inherited; those are closed here. The spawn wrapper in bwrap.ts
// closes every fd above 2 again in the child, so this is the first of two layers.

import fs from 'node:fs';
import path from 'node:path';

/** O_CLOEXEC as /proc/<pid>/fdinfo reports it in `flags:` (octal). */
const FDINFO_CLOEXEC = 0o2000000;

export interface CloseInheritedOptions {
  /** `/proc/self` in production; a test may point elsewhere. */
  procSelf?: string;
  /** Fds to leave open even without FD_CLOEXEC (Node's IPC channel when forked). */
  keep?: readonly number[];
}

/** Closes every fd above 2 that is not close-on-exec; returns the fds it closed. */
export function closeInheritedFds(opts: CloseInheritedOptions = {}): number[] {
  const procSelf = opts.procSelf ?? '/proc/self';
  const keep = new Set(opts.keep ?? []);
  const ipc = Number(process.env.NODE_CHANNEL_FD);
  if (Number.isInteger(ipc)) keep.add(ipc);
  let entries: string[];
  try {
    entries = fs.readdirSync(path.join(procSelf, 'fd'));
  } catch {
    return []; // No /proc (not Linux): nothing to inspect.
  }
  const closed: number[] = [];
  for (const entry of entries) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd <= 2 || keep.has(fd)) continue;
    let flags: number;
    try {
      const info = fs.readFileSync(path.join(procSelf, 'fdinfo', entry), 'utf8');
      const m = /^flags:\s*([0-7]+)/m.exec(info);
      if (!m) continue;
      flags = parseInt(m[1], 8);
    } catch {
      continue; // Gone already (the directory listing's own fd, for one).
    }
    if ((flags & FDINFO_CLOEXEC) !== 0) continue;
    try {
      fs.closeSync(fd);
      closed.push(fd);
    } catch {
      // Closed in the meantime.
    }
  }
  return closed;
}
