import { describe, expect, it } from 'vitest';
import { anyWakes, shouldWake, startsWithTrigger } from '../../../src/core/trigger.js';

const andyGroup = { isMain: false, requiresTrigger: true, trigger: '@Andy' };

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

describe('shouldWake', () => {
  it('wakes main and trigger-free groups on any message', () => {
    expect(shouldWake({ ...andyGroup, isMain: true }, 'just chatting')).toBe(true);
    expect(shouldWake({ ...andyGroup, requiresTrigger: false }, 'just chatting')).toBe(true);
  });

  it("honours each group's own trigger", () => {
    const bobGroup = { isMain: false, requiresTrigger: true, trigger: '@Bob' };
    expect(shouldWake(andyGroup, '@Andy hi')).toBe(true);
    expect(shouldWake(andyGroup, 'hi all')).toBe(false);
    expect(shouldWake(bobGroup, '@Andy hi')).toBe(false);
    expect(shouldWake(bobGroup, '@bob hi')).toBe(true);
  });
});

describe('anyWakes', () => {
  it('wakes when some human message carries the trigger', () => {
    expect(
      anyWakes(andyGroup, [
        { text: 'context', isBotMessage: false },
        { text: '@Andy summarise', isBotMessage: false },
      ]),
    ).toBe(true);
  });

  it("never wakes on the assistant's own messages, even in main", () => {
    const main = { ...andyGroup, isMain: true };
    expect(anyWakes(andyGroup, [{ text: '@Andy said this', isBotMessage: true }])).toBe(false);
    expect(anyWakes(main, [{ text: 'Andy: done', isBotMessage: true }])).toBe(false);
    expect(anyWakes(main, [{ text: 'hello', isBotMessage: false }])).toBe(true);
  });

  it('does not wake on an empty batch or on messages without the trigger', () => {
    expect(anyWakes(andyGroup, [])).toBe(false);
    expect(anyWakes(andyGroup, [{ text: 'hey @Andy', isBotMessage: false }])).toBe(false);
  });
});
