// Decides whether a message wakes a group (SPEC §2.5). Each group has its own
// trigger, so matching is per group and never against a global name.

import type { Group, StoredMessage } from './types.js';

/** Escapes every character that is syntax in a `u`-flag regular expression. */
function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/**
 * True when the trimmed text starts with the trigger (case-insensitive) and the
 * trigger is not merely the prefix of a longer word: `@Andyx` and `@Andyé` do not
 * wake `@Andy`, because letters of any script count as word characters.
 */
export function startsWithTrigger(text: string, trigger: string): boolean {
  const wanted = trigger.trim();
  // An empty trigger would match everything; fail closed rather than wake on noise.
  if (wanted.length === 0) return false;
  const pattern = new RegExp(`^${escapeRegExp(wanted)}(?![\\p{L}\\p{M}\\p{N}_])`, 'iu');
  return pattern.test(text.trim());
}

export function shouldWake(
  group: Pick<Group, 'isMain' | 'requiresTrigger' | 'trigger'>,
  text: string,
): boolean {
  if (group.isMain || !group.requiresTrigger) return true;
  return startsWithTrigger(text, group.trigger);
}

/** The assistant's own messages are stored but never input (SPEC §2.4), so they never wake. */
export function anyWakes(
  group: Pick<Group, 'isMain' | 'requiresTrigger' | 'trigger'>,
  messages: readonly Pick<StoredMessage, 'text' | 'isBotMessage'>[],
): boolean {
  return messages.some((m) => !m.isBotMessage && shouldWake(group, m.text));
}
