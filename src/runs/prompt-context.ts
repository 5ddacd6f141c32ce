// How a group's prompt is presented (SPEC §2.7): the context header naming the
// assistant, the chat and the configured time zone, and message times in that
// zone with their offset, so "remind me at 9" means the owner's 9. Built when a
// prompt is built, never at host start: Intl pages in the zone data (~10 MB)
// on first use, and a host that never answers should not pay for it.

import { contextHeader, describeChat, type PromptView } from '../core/prompt.js';
import type { Group } from '../core/types.js';
import { zoneOffsetReader } from '../scheduler/schedule.js';

export interface PromptContextOptions {
  assistantName: string;
  timeZone: string;
  now: () => number;
  /** The name of the channel that owns the chat, when the host knows it (else guessed from the id). */
  channelName?: (jid: string) => string | undefined;
}

/** Formats instants as local ISO-8601 with offset in one zone; one Intl formatter per prompt. */
export function localTimeFormatter(timeZone: string): (utcMs: number) => string {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') {
    // No zone data needed: the common case on servers costs no Intl at all.
    return (utcMs) => `${new Date(utcMs).toISOString().slice(0, 19)}+00:00`;
  }
  const offsetOf = zoneOffsetReader(timeZone);
  return (utcMs) => {
    const offsetMs = offsetOf(utcMs);
    const wallMs = Math.floor(utcMs / 1000) * 1000 + offsetMs;
    const offsetMinutes = Math.round(offsetMs / 60_000);
    const sign = offsetMinutes < 0 ? '-' : '+';
    const abs = Math.abs(offsetMinutes);
    const offset = `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
    return `${new Date(wallMs).toISOString().slice(0, 19)}${offset}`;
  };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** The view of one prompt for `group`: header with the time now, and local message times. */
export function promptViewFor(group: Group, options: PromptContextOptions): PromptView {
  const format = localTimeFormatter(options.timeZone);
  const described = describeChat(group.jid);
  const channel = options.channelName?.(group.jid) ?? described.channel;
  const { chatType } = described;
  const header = contextHeader(
    { assistantName: options.assistantName, chatName: group.name, chatJid: group.jid, channel, chatType },
    { timeZone: options.timeZone, now: format(options.now()) },
  );
  return {
    header,
    localTime: (iso) => {
      const ms = Date.parse(iso);
      // A timestamp a channel sent in an unexpected form is shown as it came.
      return Number.isFinite(ms) ? format(ms) : iso;
    },
  };
}
