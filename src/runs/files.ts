// Files the host writes for others to read (a long message's full text, the
// host lock's holder): written whole or not at all, so a reader never sees half.

import fs from 'node:fs';
import path from 'node:path';

/** Temp file, fsync, rename; creates the directory first. */
export function writeFileAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
