// Owner commands that read or change state without running the host:
// `groups`, `tasks`, `audit`, `usage`. They open the same SQLite file; WAL lets
// them run beside a live host.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { AUDIT_ACTIONS, type AuditAction } from '../core/audit.js';
import type { Group } from '../core/types.js';
import { validateAllowedSenders, validateFolder, validateJid, validateTrigger } from '../core/validate.js';
import type { StoreApi } from '../store/api.js';
import { LOCAL_MAIN_JID } from '../channels/local/local-channel.js';
import { CliError } from './context.js';
import { parseCommandArgs, usageError } from './commands/args.js';
import {
  checkGroupMounts,
  describeMounts,
  describeEngine,
  describeTimeout,
  parseMountFlag,
  parseEngineFlag,
  parseProviderFlag,
  parseTimeoutFlag,
} from './group-settings.js';
import { printTable } from './table.js';

export type Print = (line: string) => void;

function listGroups(args: string[], store: StoreApi, print: Print): void {
  const { values } = parseCommandArgs('groups list', {
    args,
    options: { group: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const groups = store.listGroups().filter((g) => values.group === undefined || g.folder === values.group);
  if (values.json) {
    for (const g of groups) print(JSON.stringify(g));
    return;
  }
  if (groups.length === 0) {
    print(
      values.group === undefined ? 'no registered groups' : `no registered group has folder ${values.group}`,
    );
    return;
  }
  printTable(
    print,
    ['jid', 'folder', 'wakes on', 'name', 'budget', 'senders', 'timeout', 'engine', 'mounts'],
    groups.map((g) => [
      g.jid,
      g.folder,
      describeWake(g),
      g.name,
      g.dailyTokenBudget === null ? '-' : `${g.dailyTokenBudget}/day`,
      describeAllowedSenders(g),
      describeTimeout(g.containerConfig.runTimeoutMs),
      describeEngine(g.containerConfig.engine),
      describeMounts(g.containerConfig.additionalMounts),
    ]),
  );
}

function describeWake(g: Pick<Group, 'isMain' | 'requiresTrigger' | 'trigger'>): string {
  return g.isMain ? 'main' : g.requiresTrigger ? `trigger ${g.trigger}` : 'every message';
}

/** Audit's row cap: at most this many records unless --limit says otherwise. */
const DEFAULT_AUDIT_LIMIT = 1000;

function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_AUDIT_LIMIT;
  if (!/^[1-9][0-9]{0,6}$/.test(value)) {
    throw usageError('audit', `--limit "${value}" must be a whole number >= 1, e.g. --limit 20`);
  }
  return Number(value);
}

export function groupsCommand(args: string[], config: Config, store: StoreApi, print: Print): void {
  const [sub, ...rest] = args;
  switch (sub) {
    case undefined:
    case 'list':
      listGroups(rest, store, print);
      return;
    case 'add':
      addGroupCommand(rest, config, store, print);
      return;
    case 'remove': {
      const { positionals } = parseCommandArgs('groups remove', {
        args: rest,
        options: {},
        allowPositionals: true,
      });
      const jid = positionals[0];
      if (!jid || positionals.length > 1)
        throw usageError('groups remove', 'give exactly one jid, e.g. local:family');
      if (!store.removeGroup(jid)) throw new CliError(`no registered group ${jid}`);
      print(`unregistered ${jid} (its folder and messages are kept)`);
      return;
    }
    case 'budget': {
      // Not parseArgs: a negative budget such as -5 deserves the "whole number" message, not "unknown option".
      const option = rest.find((a) => a.startsWith('--'));
      if (option) throw usageError('groups budget', `Unknown option '${option}'`);
      const positionals = rest;
      const [jid, value] = positionals;
      if (!jid || value === undefined || positionals.length > 2) {
        throw usageError('groups budget', 'give a jid and a budget, e.g. local:family 200000');
      }
      const group = store.getGroupByJid(jid);
      if (!group) throw new CliError(`no registered group ${jid}`);
      const tokens = parseBudget(value);
      store.setDailyTokenBudget(group.folder, tokens);
      print(
        tokens === null
          ? `${jid}: no daily token budget`
          : `${jid}: daily token budget ${tokens} tokens (UTC day)`,
      );
      return;
    }
    case 'edit':
      editGroup(rest, config, store, print);
      return;
    default:
      throw usageError(
        'groups',
        `unknown groups command "${sub}"; use list, add, add-main, remove, budget or edit`,
      );
  }
}

export const GROUPS_ADD_USAGE = `usage: nanoclaw groups add <jid> --name NAME --folder FOLDER [options]

  --name NAME          how the group is shown, e.g. Family
  --folder FOLDER      its folder under groups/: a-z, 0-9 and -, e.g. family
  --trigger @NAME      the wake word (default @<assistant name>)
  --no-trigger         answer every message, not only those with the wake word
  --mount HOST:NAME[:rw]
                       a host directory the agent sees at /workspace/extra/NAME;
                       read-only unless :rw; may be repeated; checked at once
                       against mount-allowlist.json in the policy dir
  --timeout DURATION   this group's run timeout, e.g. 10m, 600s (default: the global one)
  --engine ENGINE      this group's agent engine: lite (small, ~50 MB a run) or
                       claude-code (default: the configured engine)
  --main               register as the main group (the owner's self-chat)

  Find a chat's jid with: nanoclaw chats list
  e.g. nanoclaw groups add 120363012345678901@g.us --name Family --folder family --trigger @Andy
       nanoclaw groups add local:dev --name Dev --folder dev --mount ~/projects/webapp:webapp`;

export const GROUPS_EDIT_USAGE = `usage: nanoclaw groups edit <jid> [options]

  Changes only what is given.

  --allow <sender>     who may wake the group; may be repeated; sender ids as
                       stored, e.g. 491701234567@s.whatsapp.net, 123456789012345@lid,
                       local:alice. Messages from other senders are still stored
                       and reach the assistant as context the next time it is woken.
                       The main group ignores the list; the owner always wakes it.
  --allow-everyone     remove the list: every sender may wake the group (the default)
  --trigger @NAME      the wake word; the group then answers only messages with it
  --no-trigger         answer every message
  --mount HOST:NAME[:rw]
                       replaces the group's mounts with the given ones (repeatable;
                       read-only unless :rw); checked at once against the mount allowlist
  --no-mounts          remove every additional mount
  --timeout DURATION   this group's run timeout, e.g. 10m, 600s; "default" for the global one
  --engine ENGINE      this group's agent engine: lite or claude-code; "default" for the
                       configured one
  --provider PROVIDER  with lite: openai for the OpenAI-compatible provider in config.json
                       (openaiProvider), anthropic or "default" for the Messages API

  e.g. nanoclaw groups edit 120363012345678901@g.us --allow 491701234567@s.whatsapp.net
       nanoclaw groups edit local:dev --mount ~/projects/webapp:webapp:rw --timeout 20m
       nanoclaw groups edit local:family --engine lite`;

/** `allow everyone` or the listed senders, for `groups list`. */
export function describeAllowedSenders(group: Pick<Group, 'isMain' | 'allowedSenders'>): string {
  if (group.allowedSenders === null) return 'allow everyone';
  return `allow ${group.allowedSenders.join(',')}${group.isMain ? ' (ignored in main)' : ''}`;
}

function addGroupCommand(args: string[], config: Config, store: StoreApi, print: Print): void {
  const command = 'groups add';
  const { values, positionals } = parseCommandArgs(command, {
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      folder: { type: 'string' },
      trigger: { type: 'string' },
      'no-trigger': { type: 'boolean', default: false },
      mount: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      engine: { type: 'string' },
      main: { type: 'boolean', default: false },
    },
  });
  const jid = positionals[0];
  if (!jid || positionals.length > 1 || !values.name || !values.folder) {
    throw usageError(
      command,
      'give one jid, --name and --folder, e.g. local:family --name Family --folder family',
    );
  }
  const typedMounts = values.mount ?? [];
  const mounts = typedMounts.map((m) => parseMountFlag(command, m));
  const runTimeoutMs = values.timeout === undefined ? undefined : parseTimeoutFlag(command, values.timeout);
  const engine = values.engine === undefined ? null : parseEngineFlag(command, values.engine, false);
  const input = {
    jid,
    name: values.name,
    folder: values.folder,
    trigger: values.trigger ?? `@${config.assistantName}`,
    requiresTrigger: !values['no-trigger'],
    isMain: values.main,
    containerConfig: {
      ...(mounts.length > 0 ? { additionalMounts: mounts } : {}),
      ...(runTimeoutMs !== undefined ? { runTimeoutMs } : {}),
      ...(engine !== null ? { engine } : {}),
    },
  };
  const problem = groupInputProblem(input);
  if (problem) throw new CliError(problem, 2);
  const notes = checkGroupMounts(command, config, store, newGroup(input), mounts, typedMounts);
  addGroup(config, store, input);
  print(`registered ${jid} as ${values.folder}`);
  for (const note of notes) print(note);
}

function editGroup(args: string[], config: Config, store: StoreApi, print: Print): void {
  const command = 'groups edit';
  const { values, positionals } = parseCommandArgs(command, {
    args,
    allowPositionals: true,
    options: {
      allow: { type: 'string', multiple: true },
      'allow-everyone': { type: 'boolean', default: false },
      trigger: { type: 'string' },
      'no-trigger': { type: 'boolean', default: false },
      mount: { type: 'string', multiple: true },
      'no-mounts': { type: 'boolean', default: false },
      timeout: { type: 'string' },
      engine: { type: 'string' },
      provider: { type: 'string' },
    },
  });
  const allow = values.allow ?? [];
  const everyone = values['allow-everyone'];
  const typedMounts = values.mount ?? [];
  if (positionals.length !== 1) {
    throw usageError(command, 'give exactly one jid, e.g. nanoclaw groups edit local:family --no-trigger');
  }
  if (allow.length > 0 && everyone)
    throw usageError(command, 'give either --allow or --allow-everyone, not both');
  if (typedMounts.length > 0 && values['no-mounts']) {
    throw usageError(command, 'give either --mount or --no-mounts, not both');
  }
  const changesSettings =
    values.trigger !== undefined ||
    values['no-trigger'] ||
    typedMounts.length > 0 ||
    values['no-mounts'] ||
    values.timeout !== undefined ||
    values.engine !== undefined ||
    values.provider !== undefined;
  if (allow.length === 0 && !everyone && !changesSettings) {
    throw usageError(
      command,
      'nothing to change; give --allow, --allow-everyone, --trigger, --no-trigger, --mount, --no-mounts, --timeout, --engine or --provider',
    );
  }
  const jid = positionals[0];
  const group = store.getGroupByJid(jid);
  if (!group) throw new CliError(`no registered group ${jid}; see: nanoclaw groups list`);

  // Everything is checked before anything is written: a refusal saves nothing.
  const senderProblem = allow.length > 0 ? validateAllowedSenders(allow) : null;
  if (senderProblem) throw new CliError(senderProblem, 2);
  const triggerProblem = values.trigger === undefined ? null : validateTrigger(values.trigger);
  if (triggerProblem) throw new CliError(triggerProblem, 2);
  const mounts = typedMounts.map((m) => parseMountFlag(command, m));
  const timeoutMs =
    values.timeout === undefined || values.timeout === 'default'
      ? undefined
      : parseTimeoutFlag(command, values.timeout);
  const engine = values.engine === undefined ? undefined : parseEngineFlag(command, values.engine, true);
  const provider = values.provider === undefined ? undefined : parseProviderFlag(command, values.provider);
  const notes = checkGroupMounts(command, config, store, group, mounts, typedMounts);

  const containerConfig = { ...group.containerConfig };
  if (typedMounts.length > 0) containerConfig.additionalMounts = mounts;
  if (values['no-mounts']) delete containerConfig.additionalMounts;
  if (values.timeout === 'default') delete containerConfig.runTimeoutMs;
  else if (timeoutMs !== undefined) containerConfig.runTimeoutMs = timeoutMs;
  if (engine === null) delete containerConfig.engine;
  else if (engine !== undefined) containerConfig.engine = engine;
  if (provider === null) delete containerConfig.provider;
  else if (provider !== undefined) containerConfig.provider = provider;

  const updated = store.transaction(() => {
    if (allow.length > 0 || everyone) store.setAllowedSenders(jid, everyone ? null : allow);
    if (!changesSettings) return store.getGroupByJid(jid) ?? group;
    return store.updateGroupSettings(jid, {
      ...(values.trigger !== undefined ? { trigger: values.trigger } : {}),
      // A new wake word means the owner wants it used, unless --no-trigger says otherwise.
      ...(values['no-trigger']
        ? { requiresTrigger: false }
        : values.trigger !== undefined
          ? { requiresTrigger: true }
          : {}),
      containerConfig,
    });
  });
  if (allow.length > 0 || everyone) print(`${jid}: ${describeAllowedSenders(updated)}`);
  if (changesSettings) {
    print(
      `${jid}: wakes on ${describeWake(updated)}; timeout ${describeTimeout(updated.containerConfig.runTimeoutMs)}; ` +
        `engine ${describeEngine(updated.containerConfig.engine)}${updated.containerConfig.provider === 'openai' ? ' (openai provider)' : ''}; mounts ${describeMounts(updated.containerConfig.additionalMounts)}`,
    );
  }
  for (const note of notes) print(note);
  if (group.isMain && allow.length > 0)
    print('note: the main group ignores the list; every message there wakes');
}

/** `none` clears the budget; otherwise a whole number of tokens per UTC day. */
export function parseBudget(value: string): number | null {
  if (value === 'none') return null;
  if (!/^[0-9]{1,12}$/.test(value)) {
    throw new CliError(`budget "${value}" must be a whole number of tokens or "none", e.g. 200000`, 2);
  }
  return Number(value);
}

type GroupInput = Pick<Group, 'jid' | 'name' | 'folder' | 'trigger' | 'requiresTrigger' | 'isMain'> &
  Partial<Pick<Group, 'containerConfig'>>;

function groupInputProblem(input: GroupInput): string | null {
  return (
    validateJid(input.jid) ??
    validateFolder(input.folder, { isMain: input.isMain }) ??
    validateTrigger(input.trigger)
  );
}

function newGroup(input: GroupInput): Group {
  return {
    ...input,
    containerConfig: input.containerConfig ?? {},
    dailyTokenBudget: null,
    allowedSenders: null,
    addedAt: new Date().toISOString(),
  };
}

/** Mounts in `input` must already have passed checkGroupMounts. */
export function addGroup(config: Config, store: StoreApi, input: GroupInput): Group {
  const problem = groupInputProblem(input);
  if (problem) throw new CliError(problem, 2);
  const group = newGroup(input);
  try {
    store.addGroup(group);
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
  fs.mkdirSync(path.join(config.paths.groupsDir, group.folder), { recursive: true });
  return group;
}

/**
 * Makes the linked WhatsApp account's self-chat the main group. When the main
 * group is still the terminal's (`chat` was tried first), it moves to the
 * self-chat with its folder, memory and tasks, so `chat` and WhatsApp reach the
 * same agent. Another chat already registered as main is left as it is.
 */
export function adoptSelfChatAsMain(config: Config, store: StoreApi, selfJid: string, print: Print): void {
  const main = store.listGroups().find((g) => g.isMain);
  if (main?.jid === selfJid) return;
  if (main && main.jid !== LOCAL_MAIN_JID) {
    print(`The main group stays ${main.jid} (${main.name}); your self-chat ${selfJid} is not registered.`);
    return;
  }
  if (main) {
    store.moveGroupChat(main.jid, selfJid);
    print(
      `Your self-chat ${selfJid} is now the main group, with the memory of the terminal chat; ` +
        'nanoclaw chat still talks to it.',
    );
    return;
  }
  addGroup(config, store, {
    jid: selfJid,
    name: 'Main (self-chat)',
    folder: 'main',
    trigger: `@${config.assistantName}`,
    requiresTrigger: false,
    isMain: true,
  });
  print(`Registered your self-chat ${selfJid} as the main group.`);
}

/** `--since` takes an ISO time or a duration such as `30m`, `24h`, `7d`. */
export function parseSince(value: string | undefined, nowMs: number): string | undefined {
  if (value === undefined) return undefined;
  const duration = /^(\d+)([mhd])$/.exec(value);
  if (duration) {
    const unitMs = { m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as 'm' | 'h' | 'd'];
    return new Date(nowMs - Number(duration[1]) * unitMs).toISOString();
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) {
    throw new CliError(
      `--since "${value}" is neither an ISO time nor a duration; e.g. --since 24h or --since 2026-01-31`,
      2,
    );
  }
  return new Date(ms).toISOString();
}

export function auditCommand(args: string[], store: StoreApi, print: Print): void {
  const { values } = parseCommandArgs('audit', {
    args,
    options: {
      since: { type: 'string' },
      group: { type: 'string' },
      action: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.action !== undefined && !(AUDIT_ACTIONS as readonly string[]).includes(values.action)) {
    throw usageError('audit', `--action must be one of ${AUDIT_ACTIONS.join(', ')}`);
  }
  const records = store.listAudit({
    sinceIso: parseSince(values.since, Date.now()),
    group: values.group,
    action: values.action as AuditAction | undefined,
    limit: parseLimit(values.limit),
  });
  if (values.json) {
    for (const r of records) print(JSON.stringify(r));
    return;
  }
  if (records.length === 0) {
    print('no audit records');
    return;
  }
  printTable(
    print,
    ['time', 'group', 'run', 'action', 'reason', 'target', 'count'],
    records.map((r) => [
      r.time,
      r.group ?? '-',
      r.runId ?? '-',
      r.action,
      r.reason,
      r.target ?? '-',
      `×${r.count}`,
    ]),
  );
}

export function usageCommand(args: string[], store: StoreApi, print: Print): void {
  const { values } = parseCommandArgs('usage', {
    args,
    options: {
      since: { type: 'string' },
      group: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const since = parseSince(values.since, Date.now());
  const rows = store.usageByDay({ sinceDay: since?.slice(0, 10), group: values.group });
  if (values.json) {
    for (const r of rows) print(JSON.stringify(r));
    return;
  }
  if (rows.length === 0) {
    print('no usage recorded');
    return;
  }
  printTable(
    print,
    ['day', 'group', 'requests', 'input', 'output', 'cache_read', 'cache_write'],
    rows.map((r) =>
      [
        r.day,
        r.groupFolder,
        r.requests,
        r.inputTokens,
        r.outputTokens,
        r.cacheReadTokens,
        r.cacheWriteTokens,
      ].map(String),
    ),
  );
}
