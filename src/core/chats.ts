// One view of the chats the channels have seen, joined with their registration:
// what `nanoclaw chats list` prints and what main's agent gets from list_groups,
// so the owner and the agent find a chat's jid from the same data.

import type { ChatInfo, Group } from './types.js';

export interface ChatListing {
  jid: string;
  /** The registered name if any, else the name the channel reported (null when none is known yet). */
  name: string | null;
  channel: string;
  /** Null when only the chat's name is known (NAME_ONLY_TIMESTAMP): nothing has happened there yet. */
  lastActivity: string | null;
  registered: {
    folder: string;
    trigger: string;
    requiresTrigger: boolean;
    isMain: boolean;
    allowedSenders: string[] | null;
    mounts: Group['containerConfig']['additionalMounts'] | null;
    runTimeoutMs: number | null;
  } | null;
}

/** `chats` as the store lists them (newest activity first); the order is kept. */
export function chatListings(chats: readonly ChatInfo[], groups: readonly Group[]): ChatListing[] {
  const registered = new Map(groups.map((g) => [g.jid, g]));
  return chats.map((chat) => {
    const group = registered.get(chat.jid);
    return {
      jid: chat.jid,
      name: group?.name ?? chat.name,
      channel: chat.channel,
      lastActivity: Date.parse(chat.lastActivity) === 0 ? null : chat.lastActivity,
      registered: group
        ? {
            folder: group.folder,
            trigger: group.trigger,
            requiresTrigger: group.requiresTrigger,
            isMain: group.isMain,
            allowedSenders: group.allowedSenders,
            mounts: group.containerConfig.additionalMounts ?? null,
            runTimeoutMs: group.containerConfig.runTimeoutMs ?? null,
          }
        : null,
    };
  });
}
