// send_file through the ToolHost and the durable outbox (issue 13): a file of
// the group folder reaches the channel as a copy taken when the tool ran, with
// send_message's authorization; files outside the folder (also through a
// symlink) and files over the cap are refused and audited.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Group } from '../../../src/core/types.js';
import { buildTestHost, type TestHost } from '../../support/test-host.js';

let t: TestHost;
let main: Group;
let family: Group;

beforeEach(async () => {
  t = buildTestHost({ config: { maxMediaFileMb: 1 } });
  main = t.addGroup({ jid: 'fake:main', folder: 'main', isMain: true, requiresTrigger: false });
  family = t.addGroup({ jid: 'fake:family', folder: 'family' });
  await t.host.start();
});
afterEach(() => t.cleanup());

const call = (group: Group, name: string, args: unknown) =>
  t.host.tools.handle({ runId: 'run-1', group }, name, args);

function groupFile(folder: string, name: string, content: string | Buffer): string {
  const file = path.join(t.config.paths.groupsDir, folder, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

describe('send_file', () => {
  it('sends a file of the own folder (relative or /workspace/group path) with its caption and type', async () => {
    groupFile('family', 'out/report.pdf', '%PDF-1.4 report');
    groupFile('family', 'chart.png', 'png bytes');
    expect(await call(family, 'send_file', { path: 'out/report.pdf', caption: 'the report' })).toEqual({
      ok: true,
      result: { sent: true, type: 'application/pdf' },
    });
    expect(await call(family, 'send_file', { path: '/workspace/group/chart.png' })).toMatchObject({
      ok: true,
    });
    expect(t.channel.sentFiles.map((f) => [f.jid, f.type, f.caption, f.bytes.toString()])).toEqual([
      ['fake:family', 'application/pdf', 'the report', '%PDF-1.4 report'],
      ['fake:family', 'image/png', '', 'png bytes'],
    ]);
    expect(t.host.store.listAudit()).toEqual([]);
  });

  it('sends what the file held when the tool ran, even if it changes before delivery', async () => {
    const file = groupFile('family', 'note.txt', 'original');
    t.channel.setConnected(false);
    const pending = call(family, 'send_file', { path: 'note.txt' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    fs.writeFileSync(file, 'changed afterwards');
    t.channel.setConnected(true);
    expect(await pending).toMatchObject({ ok: true });
    expect(t.channel.sentFiles[0].bytes.toString()).toBe('original');
  });

  it('lets main send to another chat and refuses it to others (audited)', async () => {
    groupFile('main', 'a.txt', 'from main');
    groupFile('family', 'b.txt', 'from family');
    expect(await call(main, 'send_file', { path: 'a.txt', chat_jid: 'fake:family' })).toMatchObject({
      ok: true,
    });
    const refused = await call(family, 'send_file', { path: 'b.txt', chat_jid: 'fake:main' });
    expect(refused).toMatchObject({ ok: false, error: expect.stringContaining('only the main group') });
    expect(t.channel.sentFiles.map((f) => f.jid)).toEqual(['fake:family']);
    expect(t.host.store.listAudit()).toEqual([
      expect.objectContaining({ group: 'family', action: 'tool_call', reason: 'not_authorized' }),
    ]);
  });

  it('refuses files outside the group folder, through .. or a symlink, and files over the cap', async () => {
    groupFile('main', 'secret.txt', 'main only');
    groupFile('family', 'big.bin', Buffer.alloc(1024 * 1024 + 1));
    fs.symlinkSync(
      path.join(t.config.paths.groupsDir, 'main', 'secret.txt'),
      path.join(t.config.paths.groupsDir, 'family', 'link.txt'),
    );
    const outside = [
      await call(family, 'send_file', { path: '../main/secret.txt' }),
      await call(family, 'send_file', { path: '/workspace/groups/main/secret.txt' }),
      await call(family, 'send_file', { path: 'link.txt' }),
    ];
    for (const answer of outside) {
      expect(answer).toMatchObject({
        ok: false,
        error: expect.stringContaining('must be inside your working directory'),
      });
    }
    expect(await call(family, 'send_file', { path: 'big.bin' })).toMatchObject({
      ok: false,
      error: expect.stringContaining('larger than 1 MB'),
    });
    expect(await call(family, 'send_file', { path: 'nope.txt' })).toMatchObject({
      ok: false,
      error: 'send_file: no file "nope.txt" in your working directory',
    });
    expect(t.channel.sentFiles).toEqual([]);
    // Identical refusals of one run fold into one record with a count (SPEC §10.8).
    expect(
      t.host.store
        .listAudit()
        .map((a) => [a.reason, a.count])
        .sort(),
    ).toEqual([
      ['file_not_allowed', 3],
      ['file_too_large', 1],
    ]);
  });

  it('keeps a file in the outbox across a restart and sends it from disk', async () => {
    groupFile('family', 'later.txt', 'survives');
    t.channel.setConnected(false);
    const id = t.host.outbox.enqueueFile(
      'fake:family',
      { path: groupFile('family', 'spooled.txt', 'survives'), type: 'text/plain' },
      'cap',
    );
    expect(t.host.store.getOutbound(id)).toMatchObject({
      status: 'pending',
      text: 'cap',
      file: { type: 'text/plain' },
    });
    t.channel.setConnected(true);
    await t.host.outbox.waitForDelivery([id], 5000);
    expect(t.channel.sentFiles).toMatchObject([{ jid: 'fake:family', caption: 'cap' }]);
    expect(t.host.store.getOutbound(id)?.status).toBe('sent');
  });
});
