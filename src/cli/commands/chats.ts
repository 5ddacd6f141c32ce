// `nanoclaw chats list`: the chats the channels have seen, newest activity
// first, with the id to give `groups add` and whether each is registered. The
// same listing main's agent gets from its list_groups tool.

import type { Config } from '../../config/config.js';
import { chatListings } from '../../core/chats.js';
import type { StoreApi } from '../../store/api.js';
import type { Print } from '../admin.js';
import { printTable } from '../table.js';
import { parseCommandArgs, usageError } from './args.js';

const CHANNELS = ['whatsapp', 'local'] as const;
const DEFAULT_LIMIT = 100;

export const CHATS_LIST_USAGE = `usage: nanoclaw chats list [--channel whatsapp|local] [--limit N] [--json]

Chats seen on the channels, newest activity first: id (jid), name, channel,
last activity, and the folder when the chat is registered. A WhatsApp group
shows up once a message arrives in it or the channel syncs group names (at
connect and daily); register one with: nanoclaw groups add <jid> ...

  --channel NAME   only chats of this channel: whatsapp or local
  --limit N        at most N chats (default ${DEFAULT_LIMIT})
  --json           one JSON object per line`;

export function chatsCommand(args: string[], _config: Config, store: StoreApi, print: Print): number {
  const [sub, ...rest] = args;
  if (sub !== undefined && sub !== 'list') {
    throw usageError('chats', `unknown chats command "${sub}"; use list`);
  }
  const { values } = parseCommandArgs('chats list', {
    args: rest,
    options: {
      channel: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const channel = values.channel;
  if (channel !== undefined && !(CHANNELS as readonly string[]).includes(channel)) {
    throw usageError('chats list', `--channel "${channel}" must be one of ${CHANNELS.join(', ')}`);
  }
  let limit = DEFAULT_LIMIT;
  if (values.limit !== undefined) {
    if (!/^[1-9][0-9]{0,6}$/.test(values.limit)) {
      throw usageError(
        'chats list',
        `--limit "${values.limit}" must be a whole number >= 1, e.g. --limit 20`,
      );
    }
    limit = Number(values.limit);
  }
  const chats = chatListings(store.listChats(), store.listGroups())
    .filter((c) => channel === undefined || c.channel === channel)
    .slice(0, limit);
  if (values.json) {
    for (const c of chats) print(JSON.stringify(c));
    return 0;
  }
  if (chats.length === 0) {
    print(
      channel === undefined
        ? 'no chats seen yet; they appear once the assistant runs and a message arrives'
        : `no ${channel} chats seen yet`,
    );
    return 0;
  }
  printTable(
    print,
    ['jid', 'name', 'channel', 'last activity', 'folder'],
    chats.map((c) => [c.jid, c.name ?? '-', c.channel, c.lastActivity ?? '-', c.registered?.folder ?? '-']),
  );
  return 0;
}
