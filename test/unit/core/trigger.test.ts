import { describe, expect, it } from 'vitest';
import { anyWakes, senderMayWake, shouldWake, startsWithTrigger } from '../../../src/core/trigger.js';

const andyGroup = { isMain: false, requiresTrigger: true, trigger: '@Andy', allowedSenders: null };

describe('startsWithTrigger', () => {
  it('matches the trigger at the start followed by a non-word character or the end', () => {
    expect(startsWithTrigger('@Andy hi', '@Andy')).toBe(true);
    expect(startsWithTrigger('@andy, hi', '@Andy')).toBe(true);
    expect(startsWithTrigger('@Andy', '@Andy')).toBe(true);
    expect(startsWithTrigger('@Andy?', '@Andy')).toBe(true);
    expect(startsWithTrigger('@Andy\nwhat time is it', '@Andy')).toBe(true);
  });

  it('ignores surrounding whitespace and case', () => {
    expect(startsWithTrigger('   @ANDY hello  ', '@Andy')).toBe(true);
    expect(startsWithTrigger('@aNdY', '@andy')).toBe(true);
  });

  it('does not match a longer word or a mid-text mention', () => {
    expect(startsWithTrigger('@Andyx hi', '@Andy')).toBe(false);
    expect(startsWithTrigger('@Andy_bot hi', '@Andy')).toBe(false);
    expect(startsWithTrigger('@Andy2 hi', '@Andy')).toBe(false);
    expect(startsWithTrigger('hey @Andy', '@Andy')).toBe(false);
    expect(startsWithTrigger('', '@Andy')).toBe(false);
  });

  it('treats letters of any script as word characters', () => {
    expect(startsWithTrigger('@Andyé hi', '@Andy')).toBe(false);
    expect(startsWithTrigger('@Andyж', '@Andy')).toBe(false);
    expect(startsWithTrigger('@Zoë hallo', '@zoë')).toBe(true);
  });

  it('treats regex metacharacters in the trigger literally', () => {
    expect(startsWithTrigger('c++ help', 'c++')).toBe(true);
    expect(startsWithTrigger('cc help', 'c++')).toBe(false);
    expect(startsWithTrigger('$bot. go', '$bot.')).toBe(true);
    expect(startsWithTrigger('$botx go', '$bot.')).toBe(false);
    expect(startsWithTrigger('(a|b) x', '(a|b)')).toBe(true);
    expect(startsWithTrigger('a x', '(a|b)')).toBe(false);
    expect(startsWithTrigger('[bot]-go', '[bot]')).toBe(true);
    expect(startsWithTrigger('\\bot x', '\\bot')).toBe(true);
  });

  it('never matches an empty trigger', () => {
    expect(startsWithTrigger('anything', '')).toBe(false);
    expect(startsWithTrigger('anything', '   ')).toBe(false);
  });
});

/** A message from an ordinary group member, as the router sees it. */
function msg(text: string, sender = 'local:alice', extra: { fromMe?: boolean; isBotMessage?: boolean } = {}) {
  return { text, sender, fromMe: extra.fromMe ?? false, isBotMessage: extra.isBotMessage ?? false };
}

describe('shouldWake', () => {
  it('wakes main and trigger-free groups on any message', () => {
    expect(shouldWake({ ...andyGroup, isMain: true }, msg('just chatting'))).toBe(true);
    expect(shouldWake({ ...andyGroup, requiresTrigger: false }, msg('just chatting'))).toBe(true);
  });

  it("honours each group's own trigger", () => {
    const bobGroup = { ...andyGroup, trigger: '@Bob' };
    expect(shouldWake(andyGroup, msg('@Andy hi'))).toBe(true);
    expect(shouldWake(andyGroup, msg('hi all'))).toBe(false);
    expect(shouldWake(bobGroup, msg('@Andy hi'))).toBe(false);
    expect(shouldWake(bobGroup, msg('@bob hi'))).toBe(true);
  });
});

describe('sender allowlist', () => {
  const listed = { ...andyGroup, allowedSenders: ['491701234567@s.whatsapp.net', 'local:alice'] };

  it('lets only listed senders wake the group, trigger still required', () => {
    expect(shouldWake(listed, msg('@Andy hi', '491701234567@s.whatsapp.net'))).toBe(true);
    expect(shouldWake(listed, msg('@Andy hi', 'local:alice'))).toBe(true);
    expect(shouldWake(listed, msg('@Andy hi', '491709999999@s.whatsapp.net'))).toBe(false);
    expect(shouldWake(listed, msg('@Andy hi', 'local:bob'))).toBe(false);
    expect(shouldWake(listed, msg('no trigger', 'local:alice'))).toBe(false);
  });

  it('applies to trigger-free groups too', () => {
    const open = { ...listed, requiresTrigger: false };
    expect(shouldWake(open, msg('anything', 'local:alice'))).toBe(true);
    expect(shouldWake(open, msg('anything', 'local:bob'))).toBe(false);
  });

  it('null means everyone (the default)', () => {
    expect(senderMayWake(andyGroup, msg('x', 'local:anyone'))).toBe(true);
  });

  it("never applies to main, and always lets the owner's own messages through", () => {
    expect(shouldWake({ ...listed, isMain: true }, msg('hello', 'local:bob'))).toBe(true);
    expect(shouldWake(listed, msg('@Andy hi', '4915550000@s.whatsapp.net', { fromMe: true }))).toBe(true);
  });

  it('a non-listed message is context only: a batch wakes only through a listed sender', () => {
    expect(anyWakes(listed, [msg('@Andy from bob', 'local:bob')])).toBe(false);
    expect(anyWakes(listed, [msg('@Andy from bob', 'local:bob'), msg('@Andy now', 'local:alice')])).toBe(
      true,
    );
  });
});

describe('anyWakes', () => {
  it('wakes when some human message carries the trigger', () => {
    expect(anyWakes(andyGroup, [msg('context'), msg('@Andy summarise')])).toBe(true);
  });

  it("never wakes on the assistant's own messages, even in main", () => {
    const main = { ...andyGroup, isMain: true };
    expect(anyWakes(andyGroup, [msg('@Andy said this', 'bot', { isBotMessage: true })])).toBe(false);
    expect(anyWakes(main, [msg('Andy: done', 'bot', { isBotMessage: true })])).toBe(false);
    expect(anyWakes(main, [msg('hello')])).toBe(true);
  });

  it('does not wake on an empty batch or on messages without the trigger', () => {
    expect(anyWakes(andyGroup, [])).toBe(false);
    expect(anyWakes(andyGroup, [msg('hey @Andy')])).toBe(false);
  });
});
