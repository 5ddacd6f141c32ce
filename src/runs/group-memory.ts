// A starter CLAUDE.md for a group that has none, written before its run starts
// (every run goes through here, whichever path registered the group). Claude
// Code loads the group folder's CLAUDE.md as project memory, so the agent
// learns where it is and that the file is its own to edit. An existing file is
// never touched: after the first run it belongs to the agent and the owner.

import fs from 'node:fs';
import path from 'node:path';
import { describeChat } from '../core/prompt.js';
import type { Group } from '../core/types.js';

export const MEMORY_FILE = 'CLAUDE.md';

/** The starter text: who the agent is, which chat, where archives are, and that it may edit this file. */
export function starterMemory(group: Group, assistantName: string): string {
  const { channel, chatType } = describeChat(group.jid);
  const who =
    chatType === 'group'
      ? 'This is a group chat: several people write here, and each message names its sender.'
      : 'This is a direct (one-to-one) chat.';
  return [
    `# ${group.name}`,
    '',
    `You are ${assistantName}, the assistant in the ${chatType} chat "${group.name}" (id ${group.jid}) on ${channel}.`,
    who,
    `Messages reach you inside <messages>; the <context/> line before them names the chat, the time zone and the local time now.`,
    '',
    '## Memory',
    '',
    'This file is your memory for this chat: it is read at the start of every run. Edit it freely to keep',
    'what matters here (people, preferences, ongoing things); keep it short.',
    'Earlier conversations are archived in the conversations/ folder next to this file; read them when you need older context.',
    '',
  ].join('\n');
}

/** Writes the starter memory into `groupDir` unless a CLAUDE.md is already there; true when it wrote one. */
export function ensureStarterMemory(groupDir: string, group: Group, assistantName: string): boolean {
  fs.mkdirSync(groupDir, { recursive: true });
  try {
    // 'wx' creates or fails: an existing file (even one created a moment ago) is never overwritten.
    fs.writeFileSync(path.join(groupDir, MEMORY_FILE), starterMemory(group, assistantName), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}
