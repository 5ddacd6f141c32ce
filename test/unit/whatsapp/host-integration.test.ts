// The WhatsApp channel wired into the real host (SQLite, router, queue,
// outbox) against the fake Baileys socket: an inbound upsert becomes a run, the
// reply goes out prefixed and split, the assistant's own reply never wakes it,
// and replies queued while disconnected go out in order after reconnect.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WHATSAPP_MAX_MESSAGE_LENGTH } from '../../../src/channels/whatsapp/channel.js';
import { silentLogger } from '../../../src/core/logger.js';
import { createHost, type Host } from '../../../src/host.js';
import { FakeBaileys } from '../../support/fake-baileys.js';
import { FakeRuns } from '../../support/fake-runs.js';
import { makeTestConfig } from '../../support/test-host.js';
import { until } from '../../support/until.js';
import { fakeWhatsAppChannel, linkFakeAccount } from '../../support/fake-whatsapp.js';

const OWNER = '15550001111@s.whatsapp.net';
const FAMILY = '120363000000000001@g.us';

let host: Host | null = null;
let dir = '';
afterEach(async () => {
  await host?.stop();
  host = null;
  fs.rmSync(dir, { recursive: true, force: true });
});

function build(runs: FakeRuns): { host: Host; fake: FakeBaileys } {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-wa-'));
  const config = makeTestConfig(dir);
  linkFakeAccount(config);
  const fake = new FakeBaileys(undefined, (socket) => setImmediate(() => socket.open()));
  const built = createHost({
    config,
    logger: silentLogger(),
    makeChannels: (events) => [fakeWhatsAppChannel(config, events, fake)],
    makeRuns: () => runs,
  });
  const group = (jid: string, folder: string, isMain: boolean) =>
    built.store.addGroup({
      jid,
      name: folder,
      folder,
      trigger: '@Andy',
      requiresTrigger: !isMain,
      isMain,
      containerConfig: {},
      dailyTokenBudget: null,
      allowedSenders: null,
      addedAt: new Date().toISOString(),
    });
  group(OWNER, 'main', true);
  group(FAMILY, 'family', false);
  return { host: built, fake };
}

let counter = 0;
function textMessage(chat: string, text: string, fromMe = false, participant?: string) {
  return {
    key: { remoteJid: chat, id: `wa-${++counter}`, fromMe, participant },
    message: { conversation: text },
    messageTimestamp: Math.floor(Date.now() / 1000),
    pushName: 'Alice',
  };
}

describe('WhatsApp through the host', () => {
  it('answers a triggered group message with the name prefix, and ignores its own reply', async () => {
    const runs = new FakeRuns(async (run) => {
      await run.output('Milk is on the list.');
      run.finish({ ok: true });
    });
    const built = build(runs);
    host = built.host;
    await host.start();
    await until(() => host?.channels[0].isConnected() === true);
    const socket = built.fake.latest;

    socket.upsert([textMessage(FAMILY, 'we need milk', false, '15550002222@s.whatsapp.net')]);
    socket.upsert([textMessage(FAMILY, '@Andy add it', false, '15550002222@s.whatsapp.net')]);
    await until(() => socket.sent.length === 1);
    expect(socket.sent[0]).toEqual({ jid: FAMILY, content: { text: 'Andy: Milk is on the list.' } });
    expect(runs.runs[0].request.prompt).toContain('we need milk');

    // WhatsApp echoes our own send back as a fromMe message: stored, never input.
    socket.upsert([textMessage(FAMILY, 'Andy: Milk is on the list.', true)]);
    await new Promise((r) => setTimeout(r, 50));
    expect(runs.runs).toHaveLength(1);
    expect(host.store.messagesSince(FAMILY, 0).map((m) => m.text)).toEqual(['we need milk', '@Andy add it']);
  });

  it('treats the owner typing in the self-chat as input (main needs no trigger)', async () => {
    const runs = new FakeRuns(async (run) => {
      await run.output('hello owner');
      run.finish({ ok: true });
    });
    const built = build(runs);
    host = built.host;
    await host.start();
    await until(() => host?.channels[0].isConnected() === true);
    built.fake.latest.upsert([textMessage(OWNER, 'remind me to call mum', true)]);
    await until(() => built.fake.latest.sent.length === 1);
    expect(built.fake.latest.sent[0].content.text).toBe('Andy: hello owner');
  });

  it('splits a long reply at the WhatsApp limit, each part prefixed', async () => {
    const paragraph = 'word '.repeat(700).trim();
    const runs = new FakeRuns(async (run) => {
      await run.output(`${paragraph}\n\n${paragraph}`);
      run.finish({ ok: true });
    });
    const built = build(runs);
    host = built.host;
    await host.start();
    await until(() => host?.channels[0].isConnected() === true);
    built.fake.latest.upsert([textMessage(OWNER, 'essay please', true)]);
    await until(() => built.fake.latest.sent.length === 2);
    for (const { content } of built.fake.latest.sent) {
      expect(content.text.startsWith('Andy: ')).toBe(true);
      expect(content.text.length).toBeLessThanOrEqual(WHATSAPP_MAX_MESSAGE_LENGTH);
    }
  });

  it('holds replies while disconnected and sends them in order on the new socket', async () => {
    const runs = new FakeRuns();
    const built = build(runs);
    host = built.host;
    await host.start();
    await until(() => host?.channels[0].isConnected() === true);
    const first = built.fake.latest;
    first.close(428); // connection lost: the channel reconnects with backoff
    await until(() => host?.channels[0].isConnected() === false);
    for (const text of ['one', 'two', 'three']) host.outbox.enqueue(OWNER, text);
    await until(() => built.fake.sockets.length === 2 && host?.channels[0].isConnected() === true, 3000);
    const second = built.fake.latest;
    await until(() => second.sent.length === 3);
    expect(second.sent.map((s) => s.content.text)).toEqual(['Andy: one', 'Andy: two', 'Andy: three']);
    expect(first.sent).toEqual([]);
  });
});
