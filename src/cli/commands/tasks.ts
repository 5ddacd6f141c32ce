// `nanoclaw tasks`: list, add, pause, resume and cancel scheduled tasks. Adding
// applies the same checks as the agent's schedule_task (schedule validity, the
// minimum interval, the per-group cap); pause and resume follow the shared task
// state machine, so the owner and the agent are refused the same steps.

import type { Config } from '../../config/config.js';
import type { Task } from '../../core/types.js';
import { validateSchedule } from '../../scheduler/schedule.js';
import { applyTaskStep, newTaskId, taskLimitProblem } from '../../scheduler/task-state.js';
import type { StoreApi } from '../../store/api.js';
import type { Print } from '../admin.js';
import { CliError } from '../context.js';
import { printTable } from '../table.js';
import { parseCommandArgs, usageError } from './args.js';

export const TASKS_SUBCOMMAND_USAGE: Record<string, string> = {
  list: `usage: nanoclaw tasks list [--group FOLDER] [--json]

  --group FOLDER   only the tasks of this group
  --json           one JSON object per line`,
  add: `usage: nanoclaw tasks add --group FOLDER --prompt TEXT (--cron EXPR | --every DURATION | --at TIME) [--context group|isolated]

  --group FOLDER       the registered group the task runs in, e.g. main
  --prompt TEXT        what the assistant is asked each time
  --cron EXPR          5-field cron in the configured time zone, e.g. --cron "0 9 * * 1-5"
  --every DURATION     a fixed interval: s, m, h or d, e.g. --every 60m
  --at TIME            once, local time or with an offset, e.g. --at 2026-12-01T09:00
  --context MODE       group (default: the group's conversation) or isolated (a fresh one)

  e.g. nanoclaw tasks add --group main --prompt "summarise my unread mail" --cron "0 9 * * 1-5"`,
  pause: `usage: nanoclaw tasks pause <task-id>

  Stops an active task from running until it is resumed.`,
  resume: `usage: nanoclaw tasks resume <task-id>

  Re-activates a paused task; its next run is computed from now.`,
  cancel: `usage: nanoclaw tasks cancel <task-id>

  Deletes the task and its run log.`,
};

export const TASKS_USAGE = `usage: nanoclaw tasks list|add|pause|resume|cancel

${Object.values(TASKS_SUBCOMMAND_USAGE).join('\n\n')}`;

const MAX_PROMPT_CHARS = 20_000;
const DURATION_UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const CLI_SCHEDULE_HINT = 'nanoclaw tasks add';

export function tasksCommand(args: string[], config: Config, store: StoreApi, print: Print): number {
  const [sub, ...rest] = args;
  switch (sub) {
    case undefined:
    case 'list':
      listTasks(rest, store, print);
      return 0;
    case 'add':
      addTask(rest, config, store, print);
      return 0;
    case 'pause':
    case 'resume':
    case 'cancel':
      changeTask(sub, rest, config, store, print);
      return 0;
    default:
      throw usageError('tasks', `unknown tasks command "${sub}"; use list, add, pause, resume or cancel`);
  }
}

function listTasks(args: string[], store: StoreApi, print: Print): void {
  const { values } = parseCommandArgs('tasks list', {
    args,
    options: { group: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const tasks = store.listTasks(values.group);
  if (values.json) {
    for (const t of tasks) print(JSON.stringify(taskJson(t)));
    return;
  }
  if (tasks.length === 0) {
    print(values.group === undefined ? 'no tasks' : `no tasks for group ${values.group}`);
    return;
  }
  printTable(
    print,
    ['id', 'group', 'status', 'schedule', 'next run', 'prompt'],
    tasks.map((t) => [
      t.id,
      t.groupFolder,
      t.status,
      `${t.scheduleType} ${t.scheduleValue}`,
      t.nextRunAt === null ? '-' : new Date(t.nextRunAt).toISOString(),
      t.prompt.slice(0, 60),
    ]),
  );
}

function taskJson(t: Task) {
  return {
    ...t,
    nextRunAt: t.nextRunAt === null ? null : new Date(t.nextRunAt).toISOString(),
    lastRunAt: t.lastRunAt === null ? null : new Date(t.lastRunAt).toISOString(),
  };
}

function changeTask(
  sub: 'pause' | 'resume' | 'cancel',
  args: string[],
  config: Config,
  store: StoreApi,
  print: Print,
): void {
  const command = `tasks ${sub}`;
  const { positionals } = parseCommandArgs(command, { args, options: {}, allowPositionals: true });
  if (positionals.length !== 1) throw usageError(command, 'give exactly one task id, e.g. task-1a2b3c4d5e6f');
  const id = positionals[0];
  if (sub === 'cancel') {
    if (!store.deleteTask(id)) throw new CliError(`no task ${id}; see nanoclaw tasks list`);
    print(`cancelled ${id}`);
    return;
  }
  if (!store.getTask(id)) throw new CliError(`no task ${id}; see nanoclaw tasks list`);
  const result = applyTaskStep(store, id, sub, {
    nowMs: Date.now(),
    timeZone: config.timeZone,
    scheduleHint: CLI_SCHEDULE_HINT,
  });
  if (!result.ok) throw new CliError(result.message);
  const { task } = result;
  if (sub === 'pause') {
    print(result.changed ? `paused ${id}` : `${id} was already paused`);
  } else {
    const next = task.nextRunAt === null ? '-' : new Date(task.nextRunAt).toISOString();
    print(`${result.changed ? `resumed ${id}` : `${id} was already active`}; next run ${next}`);
  }
}

function addTask(args: string[], config: Config, store: StoreApi, print: Print): void {
  const { values } = parseCommandArgs('tasks add', {
    args,
    options: {
      group: { type: 'string' },
      prompt: { type: 'string' },
      cron: { type: 'string' },
      every: { type: 'string' },
      at: { type: 'string' },
      context: { type: 'string', default: 'group' },
    },
  });
  const fail = (problem: string) => usageError('tasks add', problem);
  if (!values.group) throw fail('--group is required, e.g. --group main');
  if (!values.prompt?.trim()) throw fail('--prompt is required, e.g. --prompt "summarise my unread mail"');
  if (values.prompt.length > MAX_PROMPT_CHARS) {
    throw fail(`--prompt is ${values.prompt.length} characters; at most ${MAX_PROMPT_CHARS}`);
  }
  if (values.context !== 'group' && values.context !== 'isolated') {
    throw fail(`--context "${values.context}" must be group or isolated, e.g. --context isolated`);
  }
  const given = (['cron', 'every', 'at'] as const).filter((flag) => values[flag] !== undefined);
  if (given.length !== 1) {
    throw fail(
      `give exactly one of --cron, --every or --at${given.length > 1 ? ` (got ${given.map((f) => `--${f}`).join(', ')})` : ''}, e.g. --cron "0 9 * * 1-5"`,
    );
  }
  const flag = given[0];
  const raw = values[flag] ?? '';
  const group = store.getGroupByFolder(values.group);
  if (!group)
    throw new CliError(`--group: no registered group has folder "${values.group}"; see nanoclaw groups list`);
  const schedule = scheduleFromFlag(flag, raw, config);
  const limit = taskLimitProblem(store, group.folder, config.maxActiveTasksPerGroup);
  if (limit) throw new CliError(limit);
  const task = store.createTask({
    id: newTaskId(),
    groupFolder: group.folder,
    chatJid: group.jid,
    prompt: values.prompt,
    scheduleType: schedule.type,
    scheduleValue: schedule.value,
    contextMode: values.context,
    nextRunAt: schedule.nextRunAt,
  });
  print(`scheduled ${task.id} in ${group.folder}; first run ${new Date(schedule.nextRunAt).toISOString()}`);
}

function scheduleFromFlag(
  flag: 'cron' | 'every' | 'at',
  raw: string,
  config: Config,
): { type: Task['scheduleType']; value: string; nextRunAt: number } {
  const fail = (problem: string) => usageError('tasks add', problem);
  let type: Task['scheduleType'];
  let value = raw;
  if (flag === 'every') {
    const match = /^(\d+)([smhd])$/.exec(raw.trim());
    if (!match) throw fail(`--every "${raw}" is not a duration, e.g. --every 60m (units s, m, h, d)`);
    const intervalMs = Number(match[1]) * DURATION_UNIT_MS[match[2] as keyof typeof DURATION_UNIT_MS];
    if (intervalMs < config.minTaskIntervalMs) {
      throw fail(
        `--every "${raw}" is shorter than the minimum interval of ${config.minTaskIntervalMs / 1000}s, e.g. --every 60m`,
      );
    }
    type = 'interval';
    value = String(intervalMs);
  } else {
    type = flag === 'cron' ? 'cron' : 'once';
  }
  const result = validateSchedule({
    type,
    value,
    timeZone: config.timeZone,
    minIntervalMs: config.minTaskIntervalMs,
    nowMs: Date.now(),
  });
  if (!result.ok) {
    // The shared checker names the agent's field; the owner typed a flag.
    throw fail(result.message.replace(/^schedule_value /, `--${flag} `));
  }
  return { type, value, nextRunAt: result.nextRunAt };
}
