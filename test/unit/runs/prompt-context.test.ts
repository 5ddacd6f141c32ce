import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Group } from '../../../src/core/types.js';
import { ensureStarterMemory, starterMemory } from '../../../src/runs/group-memory.js';
import { localTimeFormatter, promptViewFor } from '../../../src/runs/prompt-context.js';

const group = (jid: string, name: string, folder: string): Group => ({
  jid,
  name,
  folder,
  trigger: '@Andy',
  requiresTrigger: true,
  isMain: false,
  containerConfig: {},
  dailyTokenBudget: null,
  allowedSenders: null,
  addedAt: '2026-01-01T00:00:00.000Z',
});

describe('local times', () => {
  it.each([
    ['Europe/Berlin', '2026-11-30T15:05:00.000Z', '2026-11-30T16:05:00+01:00'],
    ['Europe/Berlin', '2026-07-01T07:00:00.000Z', '2026-07-01T09:00:00+02:00'],
    ['America/New_York', '2026-01-01T03:30:00.000Z', '2025-12-31T22:30:00-05:00'],
    ['Asia/Kolkata', '2026-03-01T00:00:00.000Z', '2026-03-01T05:30:00+05:30'],
    ['UTC', '2026-03-01T00:00:59.999Z', '2026-03-01T00:00:59+00:00'],
  ])('%s shows %s as %s', (zone, iso, expected) => {
    expect(localTimeFormatter(zone)(Date.parse(iso))).toBe(expected);
  });

  it('builds the header for a group with the time now in its zone, and formats message times', () => {
    const nowMs = Date.parse('2026-11-30T15:05:00.000Z');
    const view = promptViewFor(group('120363@g.us', 'Family', 'family'), {
      assistantName: 'Andy',
      timeZone: 'Europe/Berlin',
      now: () => nowMs,
    });
    expect(view.header).toBe(
      '<context assistant="Andy" chat="Family" chat_id="120363@g.us" chat_type="group" channel="whatsapp" time_zone="Europe/Berlin" now="2026-11-30T16:05:00+01:00"/>',
    );
    expect(view.localTime('2026-11-30T14:00:00.000Z')).toBe('2026-11-30T15:00:00+01:00');
    expect(view.localTime('not a time')).toBe('not a time');
  });

  it('names the channel the host knows owns the chat', () => {
    const view = promptViewFor(group('local:main', 'Main', 'main'), {
      assistantName: 'Andy',
      timeZone: 'UTC',
      now: () => 0,
      channelName: () => 'terminal',
    });
    expect(view.header).toContain(
      'chat_type="direct" channel="terminal" time_zone="UTC" now="1970-01-01T00:00:00+00:00"',
    );
  });
});

describe('starter CLAUDE.md', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-memory-'));
    dirs.push(dir);
    return dir;
  };

  it('says who the agent is, which chat, where archives are, and that it may edit the file', () => {
    const text = starterMemory(group('120363@g.us', 'Family', 'family'), 'Andy');
    expect(text).toContain(
      'You are Andy, the assistant in the group chat "Family" (id 120363@g.us) on whatsapp.',
    );
    expect(text).toContain('conversations/');
    expect(text).toContain('Edit it freely');
    expect(starterMemory(group('local:main', 'Main', 'main'), 'Andy')).toContain('direct (one-to-one) chat');
  });

  it('writes one into a folder that has none (creating the folder), and never overwrites one', () => {
    const groupDir = path.join(tempDir(), 'family');
    const family = group('120363@g.us', 'Family', 'family');
    expect(ensureStarterMemory(groupDir, family, 'Andy')).toBe(true);
    expect(fs.readFileSync(path.join(groupDir, 'CLAUDE.md'), 'utf8')).toBe(starterMemory(family, 'Andy'));
    fs.writeFileSync(path.join(groupDir, 'CLAUDE.md'), '# my own notes\n');
    expect(ensureStarterMemory(groupDir, family, 'Andy')).toBe(false);
    expect(fs.readFileSync(path.join(groupDir, 'CLAUDE.md'), 'utf8')).toBe('# my own notes\n');
  });
});
