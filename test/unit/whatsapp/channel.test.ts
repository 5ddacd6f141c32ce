import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChannelEvents } from '../../../src/core/channel.js';
import type { Logger } from '../../../src/core/logger.js';
import type { InboundMessage } from '../../../src/core/types.js';
import {
  WHATSAPP_MAX_MESSAGE_LENGTH,
  WhatsAppChannel,
  type WhatsAppChannelDeps,
} from '../../../src/channels/whatsapp/channel.js';
import type { WAMessageLike } from '../../../src/channels/whatsapp/types.js';
import { FakeBaileys, ManualTimers, flushAsync, socketError } from '../../support/fake-baileys.js';

const OWN_PN = '15550001111@s.whatsapp.net';
const DAY_MS = 24 * 60 * 60 * 1000;

interface Recorded {
  messages: InboundMessage[];
  metadata: { jid: string; name?: string | null; timestamp: string }[];
  connection: boolean[];
}

function collectingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at =
    (level: string) =>
    (a: object | string, b?: string): void => {
      lines.push({ level, msg: typeof a === 'string' ? a : (b ?? '') });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

let authDir: string;

beforeEach(() => {
  authDir = mkdtempSync(join(tmpdir(), 'wa-channel-'));
  writeFileSync(
    join(authDir, 'creds.json'),
    JSON.stringify({ me: { id: '15550001111:7@s.whatsapp.net', lid: '987654321:7@lid' }, account: {} }),
  );
});

afterEach(() => rmSync(authDir, { recursive: true, force: true }));

function setup(overrides: Partial<WhatsAppChannelDeps> = {}, baileys = new FakeBaileys()) {
  const timers = new ManualTimers();
  const recorded: Recorded = { messages: [], metadata: [], connection: [] };
  const events: ChannelEvents = {
    onMessage: (m) => recorded.messages.push(m),
    onChatMetadata: (c) => recorded.metadata.push(c),
    onConnectionChange: (c) => recorded.connection.push(c),
  };
  const logger = collectingLogger();
  const onStopped = vi.fn<(message: string) => void>();
  const channel = new WhatsAppChannel({
    authDir,
    events,
    socketFactory: baileys.factory,
    logger,
    now: () => 1_700_000_000_000 + timers.now(),
    setTimer: timers.setTimer,
    clearTimer: timers.clearTimer,
    random: () => 0.5,
    assistantName: 'Andy',
    reconnect: { baseMs: 1000, maxMs: 8000 },
    onStopped,
    ...overrides,
  });
  return { channel, baileys, timers, recorded, logger, onStopped };
}

async function connected(overrides: Partial<WhatsAppChannelDeps> = {}, baileys?: FakeBaileys) {
  const ctx = setup(overrides, baileys);
  await ctx.channel.connect();
  ctx.baileys.latest.open();
  await flushAsync();
  return ctx;
}

function text(
  body: string,
  key: Partial<WAMessageLike['key']> = {},
  extra: Partial<WAMessageLike> = {},
): WAMessageLike {
  return {
    key: { remoteJid: '15552223333@s.whatsapp.net', id: `id-${body}`, fromMe: false, ...key },
    message: { conversation: body },
    messageTimestamp: 1_700_000_123,
    pushName: 'Alice',
    ...extra,
  };
}

describe('WhatsAppChannel basics', () => {
  it('describes itself as the contract requires', () => {
    const { channel } = setup();
    expect(channel.name).toBe('whatsapp');
    expect(channel.showsBotName).toBe(false);
    expect(channel.maxMessageLength).toBe(WHATSAPP_MAX_MESSAGE_LENGTH);
    expect(WHATSAPP_MAX_MESSAGE_LENGTH).toBeLessThanOrEqual(4096);
    expect(channel.ownsJid('15552223333@s.whatsapp.net')).toBe(true);
    expect(channel.ownsJid('1203630@g.us')).toBe(true);
    expect(channel.ownsJid('555@lid')).toBe(true);
    expect(channel.ownsJid('local:main')).toBe(false);
    expect(channel.ownsJid('status@broadcast')).toBe(false);
  });

  it('refuses to connect without a linked account', async () => {
    rmSync(join(authDir, 'creds.json'));
    const { channel, baileys } = setup();
    await expect(channel.connect()).rejects.toThrow(/nanoclaw auth whatsapp/);
    expect(baileys.sockets).toHaveLength(0);
    expect(channel.isConnected()).toBe(false);
  });

  it('passes the auth dir to the socket factory and rejects connect when it fails', async () => {
    const baileys = new FakeBaileys();
    baileys.factoryError = new Error('auth dir unreadable');
    const { channel } = setup({}, baileys);
    await expect(channel.connect()).rejects.toThrow('auth dir unreadable');
    expect(baileys.authDirs).toEqual([authDir]);
  });
});

describe('connection lifecycle', () => {
  it('reports open and close as connection changes', async () => {
    const { channel, baileys, recorded } = setup();
    await channel.connect();
    expect(channel.isConnected()).toBe(false);
    baileys.latest.open();
    expect(channel.isConnected()).toBe(true);
    baileys.latest.close(428);
    expect(channel.isConnected()).toBe(false);
    expect(recorded.connection).toEqual([true, false]);
  });

  it('reconnects with growing, capped, jittered delays', async () => {
    const { channel, baileys, timers } = setup({ random: () => 0 });
    await channel.connect();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      baileys.latest.close(408);
      await flushAsync();
      const pending = timers.pendingDelaysMs();
      expect(pending).toHaveLength(1);
      delays.push(pending[0]);
      timers.advance(pending[0] - 1);
      await flushAsync();
      expect(baileys.sockets).toHaveLength(i + 1);
      timers.advance(1);
      await flushAsync();
      expect(baileys.sockets).toHaveLength(i + 2);
    }
    // random() = 0 gives the low end of each [step/2, step] window; the step caps at 8 s.
    expect(delays).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
  });

  it('keeps jittered delays within [step/2, step]', async () => {
    const values = [0.1, 0.9, 0.4, 0.7];
    const { channel, baileys, timers } = setup({ random: () => values.shift() ?? 0.5 });
    await channel.connect();
    const steps = [1000, 2000, 4000, 8000];
    for (const stepMs of steps) {
      baileys.latest.close(428);
      await flushAsync();
      const [delayMs] = timers.pendingDelaysMs();
      expect(delayMs).toBeGreaterThanOrEqual(stepMs / 2);
      expect(delayMs).toBeLessThanOrEqual(stepMs);
      timers.advance(delayMs);
      await flushAsync();
    }
  });

  it('resets the backoff after a successful open', async () => {
    const { channel, baileys, timers } = setup({ random: () => 1 });
    await channel.connect();
    for (let i = 0; i < 3; i++) {
      baileys.latest.close(428);
      await flushAsync();
      timers.advance(timers.pendingDelaysMs()[0]);
      await flushAsync();
    }
    baileys.latest.open();
    baileys.latest.close(428);
    await flushAsync();
    // Only the reconnect timer; the daily name sync is separate.
    expect(timers.pendingDelaysMs().filter((ms) => ms !== DAY_MS)).toEqual([1000]);
  });

  it('says plainly when WhatsApp cannot be reached, and backs off until a connection opens', async () => {
    const { channel, baileys, timers, logger } = setup({
      random: () => 0.9999999,
      reconnect: { baseMs: 2000, maxMs: 5 * 60_000 },
    });
    await channel.connect();
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      baileys.latest.closeWith(socketError(i % 2 === 0 ? 'ENOTFOUND' : 'ECONNREFUSED', 'connect failed'));
      await flushAsync();
      const [delayMs] = timers.pendingDelaysMs();
      delays.push(delayMs);
      timers.advance(delayMs);
      await flushAsync();
    }
    expect(delays).toEqual([2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000]);
    const warnings = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warnings[0]).toBe(
      'whatsapp: cannot reach WhatsApp (web.whatsapp.com): no network or DNS (ENOTFOUND); retrying in 2 s',
    );
    expect(warnings[1]).toBe(
      'whatsapp: cannot reach WhatsApp (web.whatsapp.com): the network is unreachable or the connection failed (ECONNREFUSED); retrying in 4 s',
    );
    expect(warnings[8]).toMatch(/retrying in 5 min$/);
    expect(logger.lines.map((l) => l.msg).join('\n')).not.toMatch(/QR/);

    // A good connection starts the backoff over.
    baileys.latest.open();
    baileys.latest.closeWith(socketError('ENOTFOUND'));
    await flushAsync();
    expect(timers.pendingDelaysMs().filter((ms) => ms !== DAY_MS)).toEqual([2000]);
  });

  it('reconnects at once on restart-required (515)', async () => {
    const { channel, baileys, timers } = setup();
    await channel.connect();
    baileys.latest.close(515);
    await flushAsync();
    expect(timers.pendingDelaysMs()).toEqual([0]);
    timers.advance(0);
    await flushAsync();
    expect(baileys.sockets).toHaveLength(2);
  });

  it('ignores events from a replaced socket', async () => {
    const { channel, baileys, timers, recorded } = setup();
    await channel.connect();
    const first = baileys.latest;
    first.close(428);
    await flushAsync();
    timers.advance(timers.pendingDelaysMs()[0]);
    await flushAsync();
    expect(first.listenerCount('messages.upsert')).toBe(0);
    expect(first.endCalls).toBeGreaterThan(0);
    first.open();
    expect(channel.isConnected()).toBe(false);
    expect(recorded.connection).toEqual([]);
  });

  it('retries when building a new socket fails', async () => {
    const { channel, baileys, timers } = setup();
    await channel.connect();
    baileys.factoryError = new Error('disk hiccup');
    baileys.latest.close(428);
    await flushAsync();
    timers.advance(timers.pendingDelaysMs()[0]);
    await flushAsync();
    expect(timers.size).toBe(1);
    baileys.factoryError = null;
    timers.advance(timers.pendingDelaysMs()[0]);
    await flushAsync();
    expect(baileys.sockets).toHaveLength(2);
  });

  it('stops cleanly when logged out: no reconnect, callback, clear log line', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation(() => {
      throw new Error('process.exit called');
    });
    try {
      const { channel, baileys, timers, recorded, onStopped, logger } = await connected();
      baileys.latest.close(401);
      await flushAsync();
      expect(channel.isConnected()).toBe(false);
      expect(recorded.connection).toEqual([true, false]);
      expect(onStopped).toHaveBeenCalledTimes(1);
      expect(onStopped.mock.calls[0][0]).toMatch(/logged this device out.*nanoclaw auth whatsapp/);
      expect(logger.lines.some((l) => l.level === 'error' && /nanoclaw auth whatsapp/.test(l.msg))).toBe(
        true,
      );
      expect(timers.size).toBe(0);
      timers.advance(10 * DAY_MS);
      await flushAsync();
      expect(baileys.sockets).toHaveLength(1);
      expect(baileys.latest.endCalls).toBeGreaterThan(0);
      await expect(channel.connect()).rejects.toThrow(/nanoclaw auth whatsapp/);
      expect(exit).not.toHaveBeenCalled();
    } finally {
      exit.mockRestore();
    }
  });

  it('reconnects after one session takeover (440), but stops when another client keeps taking it', async () => {
    const { channel, baileys, timers, onStopped } = await connected();
    baileys.latest.close(440);
    await flushAsync();
    expect(onStopped).not.toHaveBeenCalled();
    expect(timers.size).toBeGreaterThan(0);
    for (let takeover = 2; takeover <= 3; takeover++) {
      timers.advance(Math.min(...timers.pendingDelaysMs()));
      await flushAsync();
      baileys.latest.open();
      baileys.latest.close(440);
      await flushAsync();
    }
    expect(onStopped).toHaveBeenCalledTimes(1);
    expect(onStopped.mock.calls[0][0]).toMatch(/keeps taking over.*second NanoClaw/);
    expect(channel.isConnected()).toBe(false);
    const sockets = baileys.sockets.length;
    timers.advance(10 * DAY_MS);
    await flushAsync();
    expect(baileys.sockets).toHaveLength(sockets);
  });

  it('treats a QR request as an unlinked device and stops', async () => {
    const { channel, baileys, onStopped, timers } = setup();
    await channel.connect();
    baileys.latest.qr('2@abc');
    await flushAsync();
    expect(onStopped).toHaveBeenCalledWith(expect.stringMatching(/not linked.*nanoclaw auth whatsapp/));
    expect(timers.size).toBe(0);
    expect(channel.isConnected()).toBe(false);
  });

  it('disconnect ends the socket and cancels pending reconnects', async () => {
    const { channel, baileys, timers, recorded } = await connected();
    baileys.latest.close(428);
    await flushAsync();
    expect(timers.size).toBeGreaterThan(0);
    await channel.disconnect();
    expect(timers.size).toBe(0);
    expect(baileys.latest.endCalls).toBeGreaterThan(0);
    timers.advance(DAY_MS);
    await flushAsync();
    expect(baileys.sockets).toHaveLength(1);
    expect(recorded.connection).toEqual([true, false]);
  });

  it('disconnect while open reports the change once and ends the socket', async () => {
    const { channel, baileys, recorded } = await connected();
    await channel.disconnect();
    expect(channel.isConnected()).toBe(false);
    expect(recorded.connection).toEqual([true, false]);
    expect(baileys.latest.endCalls).toBe(1);
    expect(baileys.latest.listenerCount('connection.update')).toBe(0);
  });
});

describe('outbound', () => {
  it('sendMessage resolves once Baileys sent it', async () => {
    const { channel, baileys } = await connected();
    await channel.sendMessage('15552223333@s.whatsapp.net', 'Andy: hi');
    expect(baileys.latest.sent).toEqual([
      { jid: '15552223333@s.whatsapp.net', content: { text: 'Andy: hi' } },
    ]);
  });

  it('sendMessage rejects when disconnected and on send errors', async () => {
    const { channel, baileys } = setup();
    await expect(channel.sendMessage('1@s.whatsapp.net', 'x')).rejects.toThrow(/not connected/);
    await channel.connect();
    await expect(channel.sendMessage('1@s.whatsapp.net', 'x')).rejects.toThrow(/not connected/);
    baileys.latest.open();
    baileys.latest.sendError = new Error('socket hang up');
    await expect(channel.sendMessage('1@s.whatsapp.net', 'x')).rejects.toThrow('socket hang up');
    baileys.latest.close(428);
    await expect(channel.sendMessage('1@s.whatsapp.net', 'x')).rejects.toThrow(/not connected/);
  });

  it('setTyping sends composing/paused and never throws', async () => {
    const { channel, baileys } = await connected();
    await channel.setTyping('1203630@g.us', true);
    await channel.setTyping('1203630@g.us', false);
    expect(baileys.latest.presence).toEqual([
      { type: 'composing', jid: '1203630@g.us' },
      { type: 'paused', jid: '1203630@g.us' },
    ]);
    baileys.latest.presenceError = new Error('boom');
    await expect(channel.setTyping('1203630@g.us', true)).resolves.toBeUndefined();
    await channel.disconnect();
    await expect(channel.setTyping('1203630@g.us', true)).resolves.toBeUndefined();
  });
});

describe('group names', () => {
  function withGroups() {
    return new FakeBaileys(undefined, (socket) => {
      socket.user = { id: '15550001111:7@s.whatsapp.net', lid: '987654321:7@lid' };
      socket.groups = {
        '1203630@g.us': { id: '1203630@g.us', subject: 'Family' },
        '1203631@g.us': { id: '1203631@g.us', subject: 'Book club' },
      };
    });
  }

  it('syncs names at open, daily, and on demand', async () => {
    const { channel, baileys, timers, recorded } = await connected({}, withGroups());
    expect(baileys.latest.groupFetches).toBe(1);
    // A synced name is not activity: the epoch never moves a chat's last activity.
    expect(recorded.metadata).toEqual([
      { jid: '1203630@g.us', name: 'Family', timestamp: '1970-01-01T00:00:00.000Z' },
      { jid: '1203631@g.us', name: 'Book club', timestamp: '1970-01-01T00:00:00.000Z' },
    ]);
    timers.advance(DAY_MS);
    await flushAsync();
    expect(baileys.latest.groupFetches).toBe(2);
    timers.advance(DAY_MS);
    await flushAsync();
    expect(baileys.latest.groupFetches).toBe(3);
    await channel.syncChatNames();
    expect(baileys.latest.groupFetches).toBe(4);
  });

  it('does not stack daily timers across reconnects', async () => {
    const { baileys, timers } = await connected({}, withGroups());
    baileys.latest.close(515);
    await flushAsync();
    timers.advance(0);
    await flushAsync();
    baileys.latest.open();
    await flushAsync();
    expect(timers.pendingDelaysMs()).toEqual([DAY_MS]);
  });

  it('survives a failing group fetch', async () => {
    const baileys = withGroups();
    const { channel, logger } = await connected({}, baileys);
    baileys.latest.groupFetchError = new Error('rate limited');
    await expect(channel.syncChatNames()).resolves.toBeUndefined();
    expect(logger.lines.some((l) => l.level === 'warn')).toBe(true);
  });

  it('reports group subject changes and names later messages with them', async () => {
    const { baileys, recorded } = await connected();
    recorded.metadata.length = 0;
    baileys.latest.emit('groups.update', [{ id: '1203630@g.us', subject: 'Renamed' }]);
    baileys.latest.upsert([
      text('hi', { remoteJid: '1203630@g.us', participant: '15554445555@s.whatsapp.net' }),
    ]);
    await flushAsync();
    expect(recorded.metadata[0]).toMatchObject({ jid: '1203630@g.us', name: 'Renamed' });
    expect(recorded.messages[0].chatName).toBe('Renamed');
    expect(recorded.messages[0].senderName).toBe('Alice');
  });

  it('reports a group the account joins, with its name, as activity now', async () => {
    const { baileys, recorded } = await connected();
    recorded.metadata.length = 0;
    baileys.latest.emit('groups.upsert', [
      { id: '1203632@g.us', subject: 'New team' },
      { id: '1203633@g.us' },
    ]);
    await flushAsync();
    expect(recorded.metadata).toEqual([
      { jid: '1203632@g.us', name: 'New team', timestamp: new Date(1_700_000_000_000).toISOString() },
    ]);
  });
});

describe('inbound', () => {
  it('reports metadata and the message for a one-to-one text', async () => {
    const { baileys, recorded } = await connected();
    recorded.metadata.length = 0;
    baileys.latest.upsert([text('hello')]);
    await flushAsync();
    expect(recorded.metadata).toEqual([
      { jid: '15552223333@s.whatsapp.net', name: 'Alice', timestamp: '2023-11-14T22:15:23.000Z' },
    ]);
    expect(recorded.messages).toEqual([
      {
        chatJid: '15552223333@s.whatsapp.net',
        id: 'id-hello',
        sender: '15552223333@s.whatsapp.net',
        senderName: 'Alice',
        text: 'hello',
        timestamp: '2023-11-14T22:15:23.000Z',
        fromMe: false,
        isBotMessage: false,
        fromOwner: false,
        chatName: 'Alice',
      },
    ]);
  });

  it('passes what a reply quotes on: id, the quoted author (own name for own messages) and text', async () => {
    const { baileys, recorded } = await connected();
    const reply = (stanzaId: string, participant: string, quoted: string): WAMessageLike => ({
      ...text(`re ${stanzaId}`),
      message: {
        extendedTextMessage: {
          text: `re ${stanzaId}`,
          contextInfo: { stanzaId, participant, quotedMessage: { conversation: quoted } },
        },
      },
    });
    baileys.latest.upsert([
      reply('Q1', '15554445555@s.whatsapp.net', 'dinner at 8?'),
      reply('Q2', '15550001111:7@s.whatsapp.net', 'Andy: done'),
    ]);
    await flushAsync();
    expect(recorded.messages.map((m) => m.replyTo)).toEqual([
      { id: 'Q1', senderName: '15554445555', text: 'dinner at 8?' },
      { id: 'Q2', senderName: 'Owner', text: 'Andy: done' },
    ]);
  });

  it('handles append upserts too, and skips status broadcasts', async () => {
    const { baileys, recorded } = await connected();
    recorded.metadata.length = 0;
    baileys.latest.upsert([text('story', { remoteJid: 'status@broadcast' }), text('offline msg')], 'append');
    await flushAsync();
    expect(recorded.messages.map((m) => m.text)).toEqual(['offline msg']);
    expect(recorded.metadata.map((m) => m.jid)).toEqual(['15552223333@s.whatsapp.net']);
  });

  it('owner typing in the self-chat is input; the prefixed reply is the bot', async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([
      text('remind me at 5', { remoteJid: OWN_PN, fromMe: true }, { pushName: 'Owner' }),
      text('Andy: Sure, at 17:00.', { remoteJid: OWN_PN, fromMe: true }, { pushName: 'Owner' }),
      text('Andy: hi', { remoteJid: '15552223333@s.whatsapp.net', fromMe: false }),
    ]);
    await flushAsync();
    expect(recorded.messages.map((m) => [m.text, m.fromMe, m.isBotMessage, m.sender])).toEqual([
      ['remind me at 5', true, false, OWN_PN],
      ['Andy: Sure, at 17:00.', true, true, OWN_PN],
      // Someone else typing the prefix is never the bot.
      ['Andy: hi', false, false, '15552223333@s.whatsapp.net'],
    ]);
    expect(recorded.messages[0].chatName).toBeUndefined();
  });

  it("marks the account's own messages as the owner's in any chat, but not the assistant's replies", async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([
      text('note to self', { remoteJid: OWN_PN, fromMe: true }, { pushName: 'Owner' }),
      text('see you at 8', { remoteJid: '15552223333@s.whatsapp.net', fromMe: true }),
      text('ok', { remoteJid: '15552223333@s.whatsapp.net', fromMe: false }),
      text('in the group', { remoteJid: '1203630@g.us', fromMe: true }),
      text('Andy: done.', { remoteJid: OWN_PN, fromMe: true }, { pushName: 'Owner' }),
    ]);
    await flushAsync();
    expect(recorded.messages.map((m) => [m.text, m.fromOwner])).toEqual([
      ['note to self', true],
      ['see you at 8', true],
      ['ok', false],
      ['in the group', true],
      ['Andy: done.', false],
    ]);
  });

  it('translates the own LID self-chat to the phone JID', async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([text('note', { remoteJid: '987654321@lid', fromMe: true })]);
    await flushAsync();
    expect(recorded.messages[0].chatJid).toBe(OWN_PN);
    expect(recorded.messages[0].sender).toBe(OWN_PN);
    expect(baileys.latest.lidLookups).toEqual([]);
  });

  it('translates LID senders via the mapping store once, then from cache', async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.lidMap.set('555@lid', '15554445555@s.whatsapp.net');
    baileys.latest.upsert([
      text('one', { remoteJid: '1203630@g.us', participant: '555@lid' }),
      text('two', { remoteJid: '1203630@g.us', participant: '555@lid' }),
      text('dm', { remoteJid: '555@lid' }),
    ]);
    await flushAsync();
    expect(recorded.messages.map((m) => [m.chatJid, m.sender])).toEqual([
      ['1203630@g.us', '15554445555@s.whatsapp.net'],
      ['1203630@g.us', '15554445555@s.whatsapp.net'],
      ['15554445555@s.whatsapp.net', '15554445555@s.whatsapp.net'],
    ]);
    expect(baileys.latest.lidLookups).toEqual(['555@lid']);
  });

  it('uses Baileys alternate addresses before the mapping store', async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([text('x', { remoteJid: '666@lid', remoteJidAlt: '15556667777@s.whatsapp.net' })]);
    await flushAsync();
    expect(recorded.messages[0].chatJid).toBe('15556667777@s.whatsapp.net');
    expect(baileys.latest.lidLookups).toEqual([]);
  });

  it('keeps order when some messages need a LID lookup', async () => {
    const baileys = new FakeBaileys();
    const { recorded } = await connected({}, baileys);
    const socket = baileys.latest;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    socket.signalRepository.lidMapping.getPNForLID = async () => {
      await gate;
      return '15554445555@s.whatsapp.net';
    };
    socket.upsert([text('first', { remoteJid: '555@lid' })]);
    socket.upsert([text('second')]);
    await flushAsync();
    expect(recorded.messages).toHaveLength(0);
    release();
    await flushAsync();
    expect(recorded.messages.map((m) => m.text)).toEqual(['first', 'second']);
  });

  it('reports protocol messages and reactions as metadata-only events', async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([
      { ...text('x'), message: { protocolMessage: {} } },
      { ...text('y'), message: { reactionMessage: {} } },
    ]);
    await flushAsync();
    expect(recorded.messages.map((m) => m.text)).toEqual([null, null]);
  });

  it('falls back to the number as sender name and to now for missing timestamps', async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([{ ...text('hey'), pushName: null, messageTimestamp: null }]);
    await flushAsync();
    expect(recorded.messages[0].senderName).toBe('15552223333');
    expect(recorded.messages[0].timestamp).toBe(new Date(1_700_000_000_000).toISOString());
    expect(recorded.messages[0].chatName).toBeUndefined();
  });

  it("marks the account's own messages as the owner's in any chat, but not the assistant's replies", async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([
      text('note to self', { remoteJid: OWN_PN, fromMe: true }, { pushName: 'Owner' }),
      text('see you at 8', { remoteJid: '15552223333@s.whatsapp.net', fromMe: true }),
      text('ok', { remoteJid: '15552223333@s.whatsapp.net', fromMe: false }),
      text('in the group', { remoteJid: '1203630@g.us', fromMe: true }),
      text('Andy: done.', { remoteJid: OWN_PN, fromMe: true }, { pushName: 'Owner' }),
    ]);
    await flushAsync();
    expect(recorded.messages.map((m) => [m.text, m.fromOwner])).toEqual([
      ['note to self', true],
      ['see you at 8', true],
      ['ok', false],
      ['in the group', true],
      ['Andy: done.', false],
    ]);
  });

  it('hands media over as attachments, with the caption as text', async () => {
    const { baileys, recorded } = await connected();
    baileys.latest.upsert([
      { ...text('a'), message: { audioMessage: { ptt: true } } },
      { ...text('b'), message: { imageMessage: { caption: '@Andy what is this' } } },
    ]);
    await flushAsync();
    expect(recorded.messages.map((m) => [m.text, m.attachments?.map((a) => [a.kind, a.type])])).toEqual([
      [null, [['voice', 'audio/ogg']]],
      ['@Andy what is this', [['image', 'image/jpeg']]],
    ]);
  });

  it('does not let a throwing host handler break later messages', async () => {
    const baileys = new FakeBaileys();
    const seen: string[] = [];
    let first = true;
    const { logger } = await connected(
      {
        events: {
          onMessage: (m) => {
            if (first) {
              first = false;
              throw new Error('db locked');
            }
            seen.push(m.text ?? '');
          },
          onChatMetadata: () => {},
          onConnectionChange: () => {},
        },
      },
      baileys,
    );
    baileys.latest.upsert([text('lost'), text('same batch')]);
    baileys.latest.upsert([text('kept')]);
    await flushAsync();
    expect(seen).toEqual(['same batch', 'kept']);
    expect(logger.lines.some((l) => l.level === 'error')).toBe(true);
  });
});
