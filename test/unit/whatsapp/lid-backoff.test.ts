import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../src/channels/whatsapp/backoff.js';
import { LidResolver, normalizeJid } from '../../../src/channels/whatsapp/lid.js';

describe('Backoff', () => {
  it('grows exponentially, caps at maxMs, and jitters within [step/2, step]', () => {
    const low = new Backoff({ baseMs: 1000, maxMs: 10_000, random: () => 0 });
    const high = new Backoff({ baseMs: 1000, maxMs: 10_000, random: () => 0.999999 });
    const lows = Array.from({ length: 6 }, () => low.nextDelayMs());
    const highs = Array.from({ length: 6 }, () => high.nextDelayMs());
    expect(lows).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    expect(highs).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 1 });
    b.nextDelayMs();
    b.nextDelayMs();
    b.reset();
    expect(b.nextDelayMs()).toBe(100);
  });
});

describe('LidResolver', () => {
  const own = { id: '15550001111:7@s.whatsapp.net', lid: '987654321:7@lid' };

  function resolver(map: Record<string, string> = {}, maxEntries = 100) {
    const lookups: string[] = [];
    const r = new LidResolver({
      lookup: async (lid) => {
        lookups.push(lid);
        return map[lid] ?? null;
      },
      ownAccount: () => own,
      maxEntries,
    });
    return { r, lookups };
  }

  it('drops device suffixes of phone JIDs', async () => {
    const { r, lookups } = resolver();
    expect(await r.toPhoneJid('15552223333:12@s.whatsapp.net')).toBe('15552223333@s.whatsapp.net');
    expect(await r.toPhoneJid('1203630@g.us')).toBe('1203630@g.us');
    expect(lookups).toEqual([]);
  });

  it('maps the own LID to the own phone JID without a lookup', async () => {
    const { r, lookups } = resolver();
    expect(await r.toPhoneJid('987654321@lid')).toBe('15550001111@s.whatsapp.net');
    expect(lookups).toEqual([]);
  });

  it('uses the mapping store once and then its cache', async () => {
    const { r, lookups } = resolver({ '555@lid': '15554445555:3@s.whatsapp.net' });
    expect(await r.toPhoneJid('555@lid')).toBe('15554445555@s.whatsapp.net');
    expect(await r.toPhoneJid('555:2@lid')).toBe('15554445555@s.whatsapp.net');
    expect(lookups).toEqual(['555@lid']);
  });

  it('prefers a PN alternate address and does not cache unknown LIDs', async () => {
    const { r, lookups } = resolver();
    expect(await r.toPhoneJid('777@lid', '15557778888@s.whatsapp.net')).toBe('15557778888@s.whatsapp.net');
    expect(await r.toPhoneJid('888@lid')).toBe('888@lid');
    expect(await r.toPhoneJid('888@lid')).toBe('888@lid');
    expect(lookups).toEqual(['888@lid', '888@lid']);
  });

  it('keeps the cache bounded', async () => {
    const map = Object.fromEntries([1, 2, 3].map((n) => [`${n}@lid`, `1555000000${n}@s.whatsapp.net`]));
    const { r, lookups } = resolver(map, 2);
    await r.toPhoneJid('1@lid');
    await r.toPhoneJid('2@lid');
    await r.toPhoneJid('3@lid');
    expect(r.size).toBe(2);
    await r.toPhoneJid('1@lid');
    expect(lookups).toEqual(['1@lid', '2@lid', '3@lid', '1@lid']);
  });

  it('normalizeJid leaves odd input alone', () => {
    expect(normalizeJid('nonsense')).toBe('nonsense');
  });
});
