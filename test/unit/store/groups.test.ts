import { describe, expect, it } from 'vitest';
import { GroupConflictError, StoreInputError } from '../../../src/store/errors.js';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GroupTables } from '../../../src/store/groups.js';
import { MIGRATIONS, migrate } from '../../../src/store/migrations.js';
import { group, message, tempDir, tempStore } from './helpers.js';

describe('groups', () => {
  it('round-trips every field, main first in the listing', () => {
    const { store } = tempStore();
    const family = group({
      containerConfig: { additionalMounts: [{ hostPath: '~/photos', readonly: true }], runTimeoutMs: 60_000 },
      dailyTokenBudget: 100_000,
      requiresTrigger: true,
      allowedSenders: ['491701234567@s.whatsapp.net', 'local:alice'],
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

describe('group settings', () => {
  it('changes only the given trigger, trigger requirement and container config; refuses an unknown chat', () => {
    const { store } = tempStore();
    const family = group({ containerConfig: { runTimeoutMs: 60_000 }, allowedSenders: ['local:alice'] });
    store.addGroup(family);
    const renamed = store.updateGroupSettings('family@g.us', { trigger: '@Bob' });
    expect(renamed).toEqual({ ...family, trigger: '@Bob' });
    expect(store.getGroupByJid('family@g.us')).toEqual(renamed);
    const mounts = { additionalMounts: [{ hostPath: '/srv/docs', containerPath: 'docs', readonly: true }] };
    store.updateGroupSettings('family@g.us', { requiresTrigger: false, containerConfig: mounts });
    expect(store.getGroupByJid('family@g.us')).toEqual({
      ...family,
      trigger: '@Bob',
      requiresTrigger: false,
      containerConfig: mounts,
    });
    expect(() => store.updateGroupSettings('nobody@g.us', { trigger: '@X' })).toThrow(
      /no registered group nobody@g.us/,
    );
  });
});

describe('sender allowlist', () => {
  it('sets, de-duplicates and clears the list; refuses bad senders, an empty list and unknown chats', () => {
    const { store } = tempStore();
    store.addGroup(group());
    expect(store.getGroupByJid('family@g.us')!.allowedSenders).toBeNull();
    store.setAllowedSenders('family@g.us', ['local:alice', '123456789012345@lid', 'local:alice']);
    expect(store.getGroupByJid('family@g.us')!.allowedSenders).toEqual([
      'local:alice',
      '123456789012345@lid',
    ]);
    store.setAllowedSenders('family@g.us', null);
    expect(store.getGroupByJid('family@g.us')!.allowedSenders).toBeNull();
    expect(() => store.setAllowedSenders('family@g.us', ['alice'])).toThrow(
      /sender "alice" is invalid: use .*"local:alice"/,
    );
    expect(() => store.setAllowedSenders('family@g.us', [])).toThrow(StoreInputError);
    expect(() => store.setAllowedSenders('nobody@g.us', ['local:alice'])).toThrow(/no registered group/);
    expect(() => store.addGroup(group({ jid: 'x@g.us', folder: 'x', allowedSenders: ['x@g.us'] }))).toThrow(
      StoreInputError,
    );
    expect(store.getGroupByJid('x@g.us')).toBeUndefined();
  });

  it('migrates groups of an older database to "everyone"', () => {
    const db = new Database(path.join(tempDir(), 'old.db'));
    const version = MIGRATIONS.findIndex((m) => m.name === 'group sender allowlist');
    migrate(db, MIGRATIONS.slice(0, version), 'old.db');
    db.prepare(
      `INSERT INTO groups (jid, folder, name, trigger, requires_trigger, is_main, added_at)
       VALUES ('old@g.us', 'old', 'Old', '@Andy', 1, 0, '2025-01-01T00:00:00Z')`,
    ).run();
    migrate(db, MIGRATIONS, 'old.db');
    expect(new GroupTables(db).getGroupByJid('old@g.us')?.allowedSenders).toBeNull();
    db.close();
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
