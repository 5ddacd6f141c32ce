// `nanoclaw runs`: the owner's record of agent runs, newest first — when each
// started, how long it took, for which group and why (messages or a task), how
// it ended and what it cost. Read straight from SQLite, so it works beside a
// live host and with none.

import type { RunRecord, StoreApi } from '../store/api.js';
import type { Print } from './admin.js';
import { parseCommandArgs, usageError } from './commands/args.js';
import { printTable } from './table.js';

export const RUNS_USAGE = `usage: nanoclaw runs [--group FOLDER] [--limit N] [--json]

One line per agent run, newest first: start time, duration, group, kind
(messages, or task:<id>), outcome (ok, error, refused, interrupted, or running),
tokens (input/output) and the error, shortened.

  --group FOLDER   only the runs of this group
  --limit N        at most N runs (default 50)
  --json           one JSON object per line, with every token count
  --help           this text`;

const DEFAULT_LIMIT = 50;
/** Error text shown per line in the table; --json gives what is stored. */
const TABLE_ERROR_MAX_CHARS = 120;

export interface RunsOptions {
  group?: string;
  limit: number;
  json: boolean;
}

/** Null means `--help` was asked for. Bad options are usage errors (exit 2), never a stack trace. */
export function parseRunsArgs(args: string[]): RunsOptions | null {
  const { values } = parseCommandArgs('runs', {
    args,
    options: {
      group: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  let limit = DEFAULT_LIMIT;
  if (values.limit !== undefined) {
    if (!/^[1-9][0-9]{0,6}$/.test(values.limit)) {
      throw usageError('runs', `--limit "${values.limit}" must be a whole number >= 1, e.g. --limit 20`);
    }
    limit = Number(values.limit);
  }
  return { group: values.group, limit, json: values.json };
}

export function runsCommand(options: RunsOptions, store: StoreApi, print: Print): void {
  const runs = store.listRuns({ group: options.group, limit: options.limit });
  if (options.json) {
    for (const run of runs) print(JSON.stringify(runJson(run)));
    return;
  }
  if (runs.length === 0) {
    print(options.group === undefined ? 'no runs recorded' : `no runs recorded for group ${options.group}`);
    return;
  }
  printTable(
    print,
    ['started', 'duration', 'group', 'kind', 'outcome', 'tokens in/out', 'error'],
    runs.map((run) => [
      new Date(run.startedAtMs).toISOString(),
      run.endedAtMs === null ? '-' : formatDuration(run.endedAtMs - run.startedAtMs),
      run.groupFolder,
      kindOf(run),
      run.outcome ?? 'running',
      `${run.tokens.inputTokens}/${run.tokens.outputTokens}`,
      shorten(run.error ?? '', TABLE_ERROR_MAX_CHARS),
    ]),
  );
}

function runJson(run: RunRecord) {
  return {
    runId: run.runId,
    startedAt: new Date(run.startedAtMs).toISOString(),
    durationMs: run.endedAtMs === null ? null : run.endedAtMs - run.startedAtMs,
    group: run.groupFolder,
    kind: run.taskId === null ? 'messages' : 'task',
    taskId: run.taskId,
    outcome: run.outcome ?? 'running',
    tokens: run.tokens,
    error: run.error,
  };
}

function kindOf(run: RunRecord): string {
  return run.taskId === null ? 'messages' : `task:${run.taskId}`;
}

function formatDuration(durationMs: number): string {
  if (durationMs < 60_000) return `${(durationMs / 1000).toFixed(1)}s`;
  const minutes = Math.floor(durationMs / 60_000);
  return `${minutes}m${String(Math.round((durationMs % 60_000) / 1000)).padStart(2, '0')}s`;
}

/** One line: newlines would break the table. */
function shorten(text: string, maxChars: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= maxChars ? oneLine : `${oneLine.slice(0, maxChars - 1)}…`;
}
