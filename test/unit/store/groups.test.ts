import { describe, expect, it } from 'vitest';
import { GroupConflictError, StoreInputError } from '../../../src/store/errors.js';
import { group, message, tempStore } from './helpers.js';

describe('groups', () => {
  it('round-trips every field, main first in the listing', () => {
    const { store } = tempStore();
    const family = group({
      containerConfig: { additionalMounts: [{ hostPath: '~/photos', readonly: true }], runTimeoutMs: 60_000 },
      dailyTokenBudget: 100_000,
      requiresTrigger: true,
    });
    const main = group({
      jid: 'me@s.whatsapp.net',
      name: 'Me',
      folder: 'main',
      isMain: true,
      requiresTrigger: false,
      addedAt: '2025-03-02T00:00:00.000Z',
    });
    store.addGroup(family);
    store.addGroup(main);

    expect(store.listGroups()).toEqual([main, family]);
    expect(store.getGroupByJid('family@g.us')).toEqual(family);
    expect(store.getGroupByFolder('main')).toEqual(main);
    expect(store.getGroupByJid('nobody@g.us')).toBeUndefined();
    expect(store.getGroupByFolder('nobody')).toBeUndefined();
  });

  it('refuses a taken jid, a taken folder and a second main with clear messages', () => {
    const { store } = tempStore();
    store.addGroup(group({ jid: 'me@s.whatsapp.net', name: 'Me', folder: 'main', isMain: true }));
    store.addGroup(group());

    expect(() => store.addGroup(group({ folder: 'family-2' }))).toThrow(
      /chat family@g\.us is already registered as 'Family' \(folder family/,
    );
    expect(() => store.addGroup(group({ jid: 'x@g.us', name: 'X' }))).toThrow(
      /folder family is already used by 'Family'/,
    );
    expect(() => store.addGroup(group({ jid: 'x@g.us', folder: 'x', isMain: true }))).toThrow(
      /'Me' \(folder main, jid me@s\.whatsapp\.net\) is already the main group; unregister it first/,
    );
    expect(() => store.addGroup(group({ folder: 'family-2' }))).toThrow(GroupConflictError);
    expect(store.listGroups().map((g) => g.folder)).toEqual(['main', 'family']);
  });

  it('refuses folders outside [a-z0-9][a-z0-9-]{0,63}', () => {
    const { store } = tempStore();
    for (const folder of ['', 'Family', '-lead', 'a/b', '..', 'a_b', 'x'.repeat(65)]) {
      expect(() => store.addGroup(group({ folder })), folder).toThrow(StoreInputError);
    }
    store.addGroup(group({ folder: '0-ok-' + 'x'.repeat(59) }));
    expect(store.listGroups()).toHaveLength(1);
  });

  it('removes the group with its cursor and session but keeps its messages', () => {
    const { store } = tempStore();
    store.addGroup(group());
    const stored = store.insertMessage(message())!;
    store.setCursor('family@g.us', stored.seq);
    store.setSession('family', 'session-1');

    expect(store.removeGroup('family@g.us')).toBe(true);
    expect(store.getGroupByJid('family@g.us')).toBeUndefined();
    expect(store.getCursor('family@g.us')).toBe(0);
    expect(store.getSession('family')).toBeUndefined();
    expect(store.messagesSince('family@g.us', 0)).toEqual([stored]);
    expect(store.removeGroup('family@g.us')).toBe(false);

    // The jid and folder are free again.
    store.addGroup(group());
    expect(store.listGroups()).toHaveLength(1);
  });

  it('starts a (re-)registered group after the newest stored message of its chat', () => {
    const { store } = tempStore();
    store.addGroup(group());
    expect(store.getCursor('family@g.us')).toBe(0);
    store.insertMessage(message({ text: 'old question' }));
    const reply = store.insertMessage(
      message({ text: 'Andy: old answer', isBotMessage: true, fromMe: true }),
    )!;
    store.insertMessage(message({ chatJid: 'other@g.us', text: 'elsewhere' }));
    expect(store.removeGroup('family@g.us')).toBe(true);

    store.addGroup(group());
    // The assistant's reply is the newest message of the chat: nothing before it is input again.
    expect(store.getCursor('family@g.us')).toBe(reply.seq);
    expect(store.messagesSince('family@g.us', store.getCursor('family@g.us'))).toEqual([]);
    const fresh = store.insertMessage(message({ text: 'new question' }))!;
    expect(store.messagesSince('family@g.us', store.getCursor('family@g.us'))).toEqual([fresh]);
  });

  it('sets and clears the daily token budget, refusing unknown folders and bad values', () => {
    const { store } = tempStore();
    store.addGroup(group());
    store.setDailyTokenBudget('family', 50_000);
    expect(store.getGroupByFolder('family')!.dailyTokenBudget).toBe(50_000);
    store.setDailyTokenBudget('family', null);
    expect(store.getGroupByFolder('family')!.dailyTokenBudget).toBeNull();
    expect(() => store.setDailyTokenBudget('nobody', 1)).toThrow(/no registered group has folder 'nobody'/);
    expect(() => store.setDailyTokenBudget('family', -1)).toThrow(StoreInputError);
    expect(() => store.setDailyTokenBudget('family', 1.5)).toThrow(StoreInputError);
  });
});

describe('cursors and sessions', () => {
  it('round-trip and default to 0 / undefined', () => {
    const { store } = tempStore();
    expect(store.getCursor('family@g.us')).toBe(0);
    store.setCursor('family@g.us', 42);
    store.setCursor('other@g.us', 7);
    expect(store.getCursor('family@g.us')).toBe(42);
    // Rolling back after a failed run moves the cursor backwards (SPEC §4.2).
    store.setCursor('family@g.us', 10);
    expect(store.getCursor('family@g.us')).toBe(10);
    expect(store.getCursor('other@g.us')).toBe(7);

    expect(store.getSession('family')).toBeUndefined();
    store.setSession('family', 's1');
    store.setSession('family', 's2');
    store.setSession('main', 'm1');
    expect(store.getSession('family')).toBe('s2');
    store.clearSession('family');
    expect(store.getSession('family')).toBeUndefined();
    expect(store.getSession('main')).toBe('m1');
  });
});
