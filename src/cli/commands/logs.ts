// `nanoclaw logs [--follow] [--lines N]`: the host's log, wherever it goes. A
// systemd service logs to the journal, so journalctl shows it; otherwise the
// host's own file `<data dir>/logs/nanoclaw.log` (a launchd agent, or `chat`)
// is tailed here, following appends, truncation and rotation without polling.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/config.js';
import type { Print } from '../admin.js';
import { parseCommandArgs, usageError } from './args.js';
import { installedServices, systemctlArgs, type ServiceHost } from './service.js';
import { LOG_FILE_NAME, SYSTEMD_UNIT_NAME } from './service-unit.js';

export const LOGS_USAGE = `usage: nanoclaw logs [--follow|-f] [--lines N]

The host's log: the journal when it runs as a systemd service, else the log
file <data dir>/logs/${LOG_FILE_NAME}.

  -f, --follow   keep printing new lines until Ctrl-C
  --lines N      how many of the last lines to show first (default 100)`;

const DEFAULT_LINES = 100;
/** Bytes read per step when looking backwards for the last lines. */
const TAIL_CHUNK_BYTES = 64 * 1024;

export function logFile(config: Pick<Config, 'paths'>): string {
  return path.join(config.paths.logsDir, LOG_FILE_NAME);
}

/** The journalctl argv that shows one installed unit's log. */
export function journalctlArgs(scope: 'user' | 'system', lines: number, follow: boolean): string[] {
  return [
    ...(scope === 'user' ? ['--user'] : []),
    '-u',
    SYSTEMD_UNIT_NAME,
    '-n',
    String(lines),
    '--no-pager',
    ...(follow ? ['-f'] : []),
  ];
}

/** The last `count` lines of a file, read from its end so a large log costs only what is shown. */
export function lastLines(file: string, count: number): { lines: string[]; size: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let start = size;
    let text = '';
    // count + 1 newlines guarantee `count` whole lines (the file may end with one).
    while (start > 0 && (text.match(/\n/g)?.length ?? 0) <= count) {
      const length = Math.min(TAIL_CHUNK_BYTES, start);
      start -= length;
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, start);
      text = buffer.toString('latin1') + text;
    }
    const lines = Buffer.from(text, 'latin1').toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return { lines: count === 0 ? [] : lines.slice(-count), size };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Prints the file's last lines, then, while `signal` is not aborted, every
 * complete line appended to it. Watches the directory, not the file, so a
 * rotated or recreated log is picked up from its start.
 */
export async function tailFile(
  file: string,
  options: { lines: number; follow: boolean; print: Print; signal?: AbortSignal },
): Promise<void> {
  const first = lastLines(file, options.lines);
  for (const line of first.lines) options.print(line);
  if (!options.follow || options.signal?.aborted) return;

  let offset = first.size;
  let inode = fs.statSync(file).ino;
  let partial = '';
  const drain = (): void => {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      return; // Between a rotation's rename and the new file: the next event brings it.
    }
    if (stat.ino !== inode || stat.size < offset) {
      inode = stat.ino;
      offset = 0;
      partial = '';
    }
    if (stat.size === offset) return;
    const fd = fs.openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(stat.size - offset);
      const read = fs.readSync(fd, buffer, 0, buffer.length, offset);
      offset += read;
      const lines = (partial + buffer.subarray(0, read).toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.print(line);
    } finally {
      fs.closeSync(fd);
    }
  };

  const name = path.basename(file);
  const watcher = fs.watch(path.dirname(file), (_event, changed) => {
    if (changed === null || changed === name) drain();
  });
  // Lines written between the first read and the watch starting.
  drain();
  await new Promise<void>((resolve) => {
    if (options.signal === undefined) return; // Until Ctrl-C ends the process.
    options.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  watcher.close();
}

export async function logsCommand(args: string[], host: ServiceHost, config: () => Config): Promise<number> {
  const { values } = parseCommandArgs('logs', {
    args,
    options: {
      follow: { type: 'boolean', short: 'f', default: false },
      lines: { type: 'string', short: 'n' },
    },
  });
  const lines = values.lines === undefined ? DEFAULT_LINES : Number(values.lines);
  if (!Number.isInteger(lines) || lines < 0) {
    throw usageError('logs', `--lines wants a whole number, e.g. --lines 200, got "${values.lines}"`);
  }

  const unit = installedServices(host).find((s) => s.manager === 'systemd');
  if (unit !== undefined && unit.manager === 'systemd') {
    const result = await host.run('journalctl', journalctlArgs(unit.scope, lines, values.follow), {
      inheritStdio: true,
    });
    if (result !== null) return result.code;
    host.print(
      `the service logs to the journal, but journalctl is not available here; try: systemctl ${systemctlArgs(unit.scope, 'status', SYSTEMD_UNIT_NAME).join(' ')}`,
    );
    return 1;
  }

  const file = logFile(config());
  if (fs.existsSync(file)) {
    await tailFile(file, { lines, follow: values.follow, print: host.print });
    return 0;
  }
  host.print(
    `no log yet: no systemd service is installed (nanoclaw service install) and ${file} does not exist. ` +
      'A host started with nanoclaw start logs to the terminal it runs in.',
  );
  return 1;
}
