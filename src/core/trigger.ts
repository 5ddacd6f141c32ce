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

type WakeRule = Pick<Group, 'isMain' | 'requiresTrigger' | 'trigger' | 'allowedSenders'>;
type WakeInput = Pick<StoredMessage, 'text' | 'sender' | 'fromMe'>;

/**
 * The group's sender allowlist (null: everyone). Main is exempt: it is the
 * owner's self-chat, where only the owner writes. The owner's own messages
 * (`fromMe`) always pass, so an allowlist can never lock the owner out.
 */
export function senderMayWake(group: Pick<Group, 'isMain' | 'allowedSenders'>, message: WakeInput): boolean {
  if (group.isMain || group.allowedSenders === null || message.fromMe) return true;
  return group.allowedSenders.includes(message.sender);
}

/** Non-waking messages stay stored and reach the agent as context on the next wake (SPEC §2.5). */
export function shouldWake(group: WakeRule, message: WakeInput): boolean {
  if (!senderMayWake(group, message)) return false;
  if (group.isMain || !group.requiresTrigger) return true;
  return startsWithTrigger(message.text, group.trigger);
}

/** The assistant's own messages are stored but never input (SPEC §2.4), so they never wake. */
export function anyWakes(
  group: WakeRule,
  messages: readonly (WakeInput & Pick<StoredMessage, 'isBotMessage'>)[],
): boolean {
  return messages.some((m) => !m.isBotMessage && shouldWake(group, m));
}
