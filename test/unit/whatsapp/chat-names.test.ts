// What `nanoclaw chats list` shows after the WhatsApp channel ran in the real
// host against the fake Baileys socket: group names learned at connect, on a
// rename and on joining, with quiet groups after the ones where something
// happened, so the owner can find a group's id without SQL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chatsCommand } from '../../../src/cli/commands/chats.js';
import { silentLogger } from '../../../src/core/logger.js';
import { createHost, type Host } from '../../../src/host.js';
import { FakeBaileys } from '../../support/fake-baileys.js';
import { FakeRuns } from '../../support/fake-runs.js';
import { makeTestConfig } from '../../support/test-host.js';
import { until } from '../../support/until.js';
import { fakeWhatsAppChannel, linkFakeAccount } from '../../support/fake-whatsapp.js';

const FAMILY = '120363000000000001@g.us';
const CLUB = '120363000000000002@g.us';
const TEAM = '120363000000000003@g.us';

let host: Host | null = null;
let dir = '';
afterEach(async () => {
  await host?.stop();
  host = null;
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('chats list after the WhatsApp channel connected', () => {
  it('lists group names from the connect sync, renames and joins; activity orders them, names do not', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-wa-chats-'));
    const config = makeTestConfig(dir);
    linkFakeAccount(config);
    const fake = new FakeBaileys(undefined, (socket) => {
      socket.groups = {
        [FAMILY]: { id: FAMILY, subject: 'Family' },
        [CLUB]: { id: CLUB, subject: 'Book club' },
      };
      setImmediate(() => socket.open());
    });
    host = createHost({
      config,
      logger: silentLogger(),
      makeChannels: (events) => [fakeWhatsAppChannel(config, events, fake)],
      makeRuns: () => new FakeRuns(),
    });
    await host.start();
    const store = host.store;
    await until(() => store.listChats().length === 2, 3000, 'synced group names');

    const list = (...args: string[]) => {
      const out: string[] = [];
      expect(chatsCommand(['list', ...args], config, store, (l) => out.push(l))).toBe(0);
      return out;
    };
    // Known only by name: no activity yet (ties go by jid).
    expect(list('--json').map((l) => JSON.parse(l) as unknown)).toEqual([
      { jid: FAMILY, name: 'Family', channel: 'whatsapp', lastActivity: null, registered: null },
      { jid: CLUB, name: 'Book club', channel: 'whatsapp', lastActivity: null, registered: null },
    ]);

    // A message in the club (unregistered: only metadata is kept), a rename of
    // the family group, and a newly joined group.
    const socket = fake.latest;
    socket.upsert([
      {
        key: { remoteJid: CLUB, id: 'wa-1', fromMe: false, participant: '15550002222@s.whatsapp.net' },
        message: { conversation: 'anyone read it?' },
        messageTimestamp: Math.floor(Date.now() / 1000) - 60,
        pushName: 'Alice',
      },
    ]);
    await until(() => store.listChats()[0]?.jid === CLUB, 3000, 'club activity');
    socket.emit('groups.update', [{ id: FAMILY, subject: 'Family (new)' }]);
    socket.emit('groups.upsert', [{ id: TEAM, subject: 'Team' }]);
    await until(() => store.listChats().length === 3, 3000, 'joined group');

    const table = list('--channel', 'whatsapp');
    expect(table[0]).toMatch(/^jid +name +channel +last activity +folder$/);
    const rows = table.slice(1).map((l) => l.split(/ {2,}/));
    // Family and Team changed just now; the club's message is a minute old.
    expect(rows.map((r) => [r[0], r[1], r[2], r[4]]).slice(2)).toEqual([
      [CLUB, 'Book club', 'whatsapp', '-'],
    ]);
    expect(
      rows
        .slice(0, 2)
        .map((r) => r[1])
        .sort(),
    ).toEqual(['Family (new)', 'Team']);
    for (const r of rows) expect(Number.isNaN(Date.parse(r[3]))).toBe(false);
    // The channel's sync later must not make the quiet club look active again.
    const clubActivity = rows[2][3];
    await host.channels[0].syncChatNames?.();
    expect(store.listChats().find((c) => c.jid === CLUB)?.lastActivity).toBe(clubActivity);
  });
});
