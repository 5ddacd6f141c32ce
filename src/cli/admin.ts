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
  print('jid\tfolder\twakes on\tname\tbudget\tsenders');
  for (const g of groups) {
    print(
      [
        g.jid,
        g.folder,
        g.isMain ? 'main' : g.requiresTrigger ? `trigger ${g.trigger}` : 'no trigger',
        g.name,
        g.dailyTokenBudget === null ? '-' : `${g.dailyTokenBudget}/day`,
        describeAllowedSenders(g),
      ].join('\t'),
    );
  }
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
    case 'add': {
      const { values, positionals } = parseCommandArgs('groups add', {
        args: rest,
        allowPositionals: true,
        options: {
          name: { type: 'string' },
          folder: { type: 'string' },
          trigger: { type: 'string' },
          'no-trigger': { type: 'boolean', default: false },
          main: { type: 'boolean', default: false },
        },
      });
      const jid = positionals[0];
      if (!jid || !values.name || !values.folder) {
        throw usageError(
          'groups add',
          'give a jid, --name and --folder, e.g. local:family --name Family --folder family',
        );
      }
      addGroup(config, store, {
        jid,
        name: values.name,
        folder: values.folder,
        trigger: values.trigger ?? `@${config.assistantName}`,
        requiresTrigger: !values['no-trigger'],
        isMain: values.main,
      });
      print(`registered ${jid} as ${values.folder}`);
      return;
    }
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
      editGroup(rest, store, print);
      return;
    default:
      throw usageError(
        'groups',
        `unknown groups command "${sub}"; use list, add, add-main, remove, budget or edit`,
      );
  }
}

export const GROUPS_EDIT_USAGE = `usage: nanoclaw groups edit <jid> --allow <sender> [--allow <sender>...] | --allow-everyone

  Sets who may wake the assistant in a group. Messages from other senders are
  still stored and reach the assistant as context the next time it is woken.
  The main group (the owner's self-chat) ignores the list, and the owner's own
  messages always wake.

  --allow <sender>     may be repeated; sender ids as stored, e.g.
                       491701234567@s.whatsapp.net, 123456789012345@lid, local:alice
  --allow-everyone     remove the list: every sender may wake the group (the default)

  e.g. nanoclaw groups edit 120363012345678901@g.us --allow 491701234567@s.whatsapp.net`;

/** `allow everyone` or the listed senders, for `groups list`. */
export function describeAllowedSenders(group: Pick<Group, 'isMain' | 'allowedSenders'>): string {
  if (group.allowedSenders === null) return 'allow everyone';
  return `allow ${group.allowedSenders.join(',')}${group.isMain ? ' (ignored in main)' : ''}`;
}

function editGroup(args: string[], store: StoreApi, print: Print): void {
  const parsed = parseCommandArgs('groups edit', {
    args,
    allowPositionals: true,
    options: {
      allow: { type: 'string', multiple: true },
      'allow-everyone': { type: 'boolean', default: false },
    },
  });
  const { values, positionals } = parsed;
  const allow = values.allow ?? [];
  const everyone = values['allow-everyone'];
  if (positionals.length !== 1 || (allow.length === 0) === !everyone) {
    throw usageError('groups edit', 'give one jid and either --allow <sender> or --allow-everyone');
  }
  const jid = positionals[0];
  const group = store.getGroupByJid(jid);
  if (!group) throw new CliError(`no registered group ${jid}; see: nanoclaw groups list`);
  const problem = everyone ? null : validateAllowedSenders(allow);
  if (problem) throw new CliError(problem, 2);
  store.setAllowedSenders(jid, everyone ? null : allow);
  const updated = store.getGroupByJid(jid) ?? group;
  print(`${jid}: ${describeAllowedSenders(updated)}`);
  if (group.isMain && !everyone) print('note: the main group ignores the list; every message there wakes');
}

/** `none` clears the budget; otherwise a whole number of tokens per UTC day. */
export function parseBudget(value: string): number | null {
  if (value === 'none') return null;
  if (!/^[0-9]{1,12}$/.test(value)) {
    throw new CliError(`budget "${value}" must be a whole number of tokens or "none", e.g. 200000`, 2);
  }
  return Number(value);
}

export function addGroup(
  config: Config,
  store: StoreApi,
  input: Pick<Group, 'jid' | 'name' | 'folder' | 'trigger' | 'requiresTrigger' | 'isMain'>,
): Group {
  const problem =
    validateJid(input.jid) ??
    validateFolder(input.folder, { isMain: input.isMain }) ??
    validateTrigger(input.trigger);
  if (problem) throw new CliError(problem, 2);
  const group: Group = {
    ...input,
    containerConfig: {},
    dailyTokenBudget: null,
    allowedSenders: null,
    addedAt: new Date().toISOString(),
  };
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
  if (records.length === 0 && !values.json) print('no audit records');
  for (const r of records) {
    print(
      values.json
        ? JSON.stringify(r)
        : `${r.time}\t${r.group ?? '-'}\t${r.runId ?? '-'}\t${r.action}\t${r.reason}\t${r.target ?? ''}${r.count > 1 ? `\t×${r.count}` : ''}`,
    );
  }
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
  if (rows.length === 0 && !values.json) print('no usage recorded');
  if (!values.json && rows.length > 0) print('day\tgroup\trequests\tinput\toutput\tcache_read\tcache_write');
  for (const r of rows) {
    print(
      values.json
        ? JSON.stringify(r)
        : `${r.day}\t${r.groupFolder}\t${r.requests}\t${r.inputTokens}\t${r.outputTokens}\t${r.cacheReadTokens}\t${r.cacheWriteTokens}`,
    );
  }
}
