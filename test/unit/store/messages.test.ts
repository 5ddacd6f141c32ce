import { describe, expect, it } from 'vitest';
import { UNKNOWN_CHANNEL } from '../../../src/store/messages.js';
import { message, tempStore } from './helpers.js';

describe('chats', () => {
  it('upserts metadata, keeps the name when none is given and never lowers last activity', () => {
    const { store } = tempStore();
    store.upsertChat({
      jid: 'a@g.us',
      name: 'Alpha',
      channel: 'whatsapp',
      timestamp: '2025-03-01T10:00:00Z',
    });
    store.upsertChat({ jid: 'a@g.us', channel: 'whatsapp', timestamp: '2025-03-01T12:00:00Z' });
    store.upsertChat({ jid: 'a@g.us', name: null, channel: 'whatsapp', timestamp: '2025-03-01T11:00:00Z' });
    store.upsertChat({ jid: 'b@g.us', name: 'Beta', channel: 'local', timestamp: '2025-03-01T13:00:00Z' });

    expect(store.listChats()).toEqual([
      { jid: 'b@g.us', name: 'Beta', channel: 'local', lastActivity: '2025-03-01T13:00:00Z' },
      { jid: 'a@g.us', name: 'Alpha', channel: 'whatsapp', lastActivity: '2025-03-01T12:00:00Z' },
    ]);
  });

  it('compares activity as instants, not strings, across time-zone offsets', () => {
    const { store } = tempStore();
    store.upsertChat({ jid: 'a@g.us', channel: 'whatsapp', timestamp: '2025-03-01T12:00:00+02:00' });
    // 10:30Z is later than 12:00+02:00 (= 10:00Z) although it sorts lower as text.
    store.upsertChat({ jid: 'a@g.us', channel: 'whatsapp', timestamp: '2025-03-01T10:30:00Z' });
    expect(store.listChats()[0].lastActivity).toBe('2025-03-01T10:30:00Z');
  });
});

describe('insertMessage', () => {
  it('returns the stored message with an increasing seq and upserts the chat', () => {
    const { store } = tempStore();
    const first = store.insertMessage(message({ text: 'one', chatName: 'Family' }));
    const second = store.insertMessage(message({ text: 'two' }));
    expect(first).toMatchObject({ chatJid: 'family@g.us', text: 'one', fromMe: false, isBotMessage: false });
    expect(first!.seq).toBeGreaterThan(0);
    expect(second!.seq).toBeGreaterThan(first!.seq);
    expect(store.listChats()).toEqual([
      {
        jid: 'family@g.us',
        name: 'Family',
        channel: UNKNOWN_CHANNEL,
        lastActivity: '2025-03-01T10:00:00.000Z',
      },
    ]);
  });

  it('keeps the channel recorded by upsertChat', () => {
    const { store } = tempStore();
    store.upsertChat({
      jid: 'family@g.us',
      name: 'Family',
      channel: 'whatsapp',
      timestamp: '2025-03-01T09:00:00Z',
    });
    store.insertMessage(message({ timestamp: '2025-03-01T10:00:00Z' }));
    expect(store.listChats()[0]).toMatchObject({ channel: 'whatsapp', lastActivity: '2025-03-01T10:00:00Z' });
  });

  it('gives two messages with the same timestamp distinct seqs and returns both', () => {
    const { store } = tempStore();
    const timestamp = '2025-03-01T10:00:00.000Z';
    const a = store.insertMessage(message({ text: 'a', timestamp }))!;
    const b = store.insertMessage(message({ text: 'b', timestamp }))!;
    expect(b.seq).toBeGreaterThan(a.seq);
    expect(store.messagesSince('family@g.us', 0).map((m) => m.text)).toEqual(['a', 'b']);
    expect(store.messagesSince('family@g.us', a.seq).map((m) => m.text)).toEqual(['b']);
  });

  it('round-trips fromOwner, defaulting to false when the channel does not say', () => {
    const { store } = tempStore();
    const owner = store.insertMessage(message({ text: 'mine', fromMe: true, fromOwner: true }))!;
    const other = store.insertMessage(message({ text: 'theirs', fromOwner: false }))!;
    const unsaid = store.insertMessage(message({ text: 'unsaid' }))!;
    expect([owner.fromOwner, other.fromOwner, unsaid.fromOwner]).toEqual([true, false, false]);
    expect(store.messagesSince('family@g.us', 0)).toEqual([owner, other, unsaid]);
    expect(store.messagesSince('family@g.us', 0).map((m) => m.fromOwner)).toEqual([true, false, false]);
  });

  it('stores a redelivered message once and returns null the second time', () => {
    const { store } = tempStore();
    const original = message({ id: 'wa-1', text: 'hi' });
    expect(store.insertMessage(original)).not.toBeNull();
    expect(store.insertMessage({ ...original, text: 'hi again' })).toBeNull();
    expect(store.messagesSince('family@g.us', 0).map((m) => m.text)).toEqual(['hi']);
    // The same id in another chat is a different message.
    expect(store.insertMessage({ ...original, chatJid: 'other@g.us' })).not.toBeNull();
  });

  it('returns null for empty or whitespace-only text but still updates chat metadata', () => {
    const { store } = tempStore();
    expect(
      store.insertMessage(message({ text: null, chatName: 'Family', timestamp: '2025-03-01T10:00:00Z' })),
    ).toBeNull();
    expect(store.insertMessage(message({ text: '  \n\t ', timestamp: '2025-03-01T11:00:00Z' }))).toBeNull();
    expect(store.insertMessage(message({ text: '', timestamp: '2025-03-01T12:00:00Z' }))).toBeNull();
    expect(store.messagesSince('family@g.us', 0)).toEqual([]);
    expect(store.listChats()).toEqual([
      { jid: 'family@g.us', name: 'Family', channel: UNKNOWN_CHANNEL, lastActivity: '2025-03-01T12:00:00Z' },
    ]);
  });

  it('stores text verbatim, including surrounding whitespace and unicode', () => {
    const { store } = tempStore();
    const stored = store.insertMessage(message({ text: '  héllo 👋\n' }))!;
    expect(store.messagesSince('family@g.us', 0)).toEqual([stored]);
    expect(stored.text).toBe('  héllo 👋\n');
  });
});

describe('messagesSince and latestSeq', () => {
  it('exclude bot messages but keep them stored (seqs still advance)', () => {
    const { store } = tempStore();
    const human = store.insertMessage(message({ text: 'question' }))!;
    const bot = store.insertMessage(message({ text: 'Andy: answer', isBotMessage: true, fromMe: true }))!;
    expect(bot).not.toBeNull();
    expect(bot.isBotMessage).toBe(true);
    expect(store.messagesSince('family@g.us', 0).map((m) => m.seq)).toEqual([human.seq]);
    expect(store.latestSeq('family@g.us')).toBe(human.seq);

    const ownerTyping = store.insertMessage(message({ text: 'from my phone', fromMe: true }))!;
    expect(store.messagesSince('family@g.us', human.seq)).toEqual([ownerTyping]);
    expect(store.latestSeq('family@g.us')).toBe(ownerTyping.seq);
  });

  it('are per chat, oldest first, and honour the limit', () => {
    const { store } = tempStore();
    const texts = ['1', '2', '3', '4'];
    for (const text of texts) {
      store.insertMessage(message({ text }));
      store.insertMessage(message({ chatJid: 'other@g.us', text: `other ${text}` }));
    }
    expect(store.messagesSince('family@g.us', 0).map((m) => m.text)).toEqual(texts);
    expect(store.messagesSince('family@g.us', 0, 2).map((m) => m.text)).toEqual(['1', '2']);
    expect(store.messagesSince('nobody@g.us', 0)).toEqual([]);
    expect(store.latestSeq('nobody@g.us')).toBe(0);
    expect(store.latestSeq('other@g.us')).toBe(store.messagesSince('other@g.us', 0).at(-1)!.seq);
  });
});

describe('pruneMessages', () => {
  it('deletes messages older than the cutoff by message time and keeps seqs unique afterwards', () => {
    const { store } = tempStore();
    const old = store.insertMessage(message({ text: 'old', timestamp: '2025-01-01T00:00:00Z' }))!;
    store.insertMessage(message({ text: 'older', timestamp: '2024-12-01T00:00:00Z' }));
    const recent = store.insertMessage(message({ text: 'recent', timestamp: '2025-03-01T00:00:00Z' }))!;

    expect(store.pruneMessages(Date.parse('2025-02-01T00:00:00Z'))).toBe(2);
    expect(store.messagesSince('family@g.us', 0)).toEqual([recent]);
    expect(store.pruneMessages(Date.parse('2025-02-01T00:00:00Z'))).toBe(0);

    // AUTOINCREMENT: a pruned seq is never handed out again, so cursors stay valid.
    const next = store.insertMessage(message({ text: 'next', timestamp: '2025-03-02T00:00:00Z' }))!;
    expect(next.seq).toBeGreaterThan(recent.seq);
    expect(next.seq).not.toBe(old.seq);
    // Chat metadata is not part of retention.
    expect(store.listChats()).toHaveLength(1);
  });
});

describe('replies (SPEC §2.7)', () => {
  it('stores what a reply quotes and reads it back, after a reopen too', () => {
    const handle = tempStore();
    const first = handle.store.insertMessage(message({ id: 'Q1', senderName: 'Ann', text: 'dinner at 8?' }));
    const reply = handle.store.insertMessage(
      message({ id: 'R1', senderName: 'Bo', text: 'yes', replyTo: { id: 'Q1' } }),
    );
    const expected = { id: 'Q1', senderName: 'Ann', excerpt: 'dinner at 8?' };
    expect(reply?.replyTo).toEqual(expected);
    const store = handle.reopen();
    const stored = store.messagesSince('family@g.us', 0);
    expect(stored.map((m) => [m.id, m.replyTo])).toEqual([
      ['Q1', null],
      ['R1', expected],
    ]);
    expect(first?.replyTo).toBeNull();
  });

  it('prefers the stored quoted message over what the channel sent, and keeps only an excerpt', () => {
    const { store } = tempStore();
    store.insertMessage(message({ id: 'Q1', senderName: 'Ann (stored)', text: 'x'.repeat(500) }));
    const reply = store.insertMessage(
      message({ text: 'ok', replyTo: { id: 'Q1', senderName: '15550001111', text: 'what the phone had' } }),
    );
    expect(reply?.replyTo?.senderName).toBe('Ann (stored)');
    expect([...(reply?.replyTo?.excerpt ?? '')]).toHaveLength(200);
  });

  it('keeps what the channel sent when the quoted message is not stored, or just the id', () => {
    const { store } = tempStore();
    const known = store.insertMessage(
      message({ text: 'ok', replyTo: { id: 'OLD', senderName: '15550001111', text: 'from last year' } }),
    );
    expect(known?.replyTo).toEqual({ id: 'OLD', senderName: '15550001111', excerpt: 'from last year' });
    const bare = store.insertMessage(message({ text: 'ok', replyTo: { id: 'GONE' } }));
    expect(bare?.replyTo).toEqual({ id: 'GONE', senderName: null, excerpt: null });
    // A quote is looked up in the same chat only: another chat's message with that id is not it.
    store.insertMessage(message({ chatJid: 'other@g.us', id: 'X1', senderName: 'Eve', text: 'secret' }));
    const elsewhere = store.insertMessage(message({ text: 'ok', replyTo: { id: 'X1' } }));
    expect(elsewhere?.replyTo).toEqual({ id: 'X1', senderName: null, excerpt: null });
  });
});
