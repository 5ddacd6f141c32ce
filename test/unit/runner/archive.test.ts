// The conversation archive's parts: transcript parsing, slug, Markdown, the
// never-overwriting atomic write, and a hook that never throws.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HookInput } from '@anthropic-ai/claude-agent-sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  archiveHooks,
  archiveSlug,
  localDay,
  readablePrompt,
  renderMarkdown,
  transcriptTurns,
  writeArchive,
} from '../../../runner/archive.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'archive-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const PROMPT =
  '<messages><message sender="bob &amp; co" time="2026-11-30 09:00">Plan the &lt;big&gt; trip</message>' +
  '<message sender="alice" time="2026-11-30 09:01">to Lisbon</message></messages>';

function transcript(): string {
  const lines: unknown[] = [
    { type: 'summary', summary: 'ignored' },
    { type: 'user', isMeta: true, message: { role: 'user', content: 'caveat: local command' } },
    { type: 'user', message: { role: 'user', content: [{ type: 'text', text: PROMPT }] } },
    {
      type: 'assistant',
      message: {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'hidden' },
          { type: 'text', text: 'Let me check flights.' },
          { type: 'tool_use', id: 't1', name: 'WebSearch', input: { q: 'flights' } },
        ],
      },
    },
    {
      type: 'user',
      message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'huge' }] },
    },
    {
      type: 'assistant',
      message: { role: 'assistant', content: [{ type: 'text', text: 'Flights found.' }] },
    },
    { type: 'user', message: { role: 'user', content: '<command-name>/compact</command-name>' } },
  ];
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n{not json\n';
}

describe('transcriptTurns', () => {
  it('keeps text turns, turns each tool call into one line, and drops results, meta and commands', () => {
    expect(transcriptTurns(transcript())).toEqual([
      { role: 'user', text: PROMPT },
      { role: 'assistant', text: 'Let me check flights.\n\n_(used tool WebSearch)_' },
      { role: 'assistant', text: 'Flights found.' },
    ]);
  });

  it('marks an earlier compaction summary as such', () => {
    const line = JSON.stringify({
      type: 'user',
      isCompactSummary: true,
      message: { role: 'user', content: 'Earlier: the teapot is blue.' },
    });
    expect(transcriptTurns(line)[0].text).toMatch(/^_\(summary of the earlier conversation\)_\n\nEarlier/);
  });
});

describe('readablePrompt and archiveSlug', () => {
  it('shows each message with its sender and time, entities decoded', () => {
    expect(readablePrompt(PROMPT)).toBe(
      '**bob & co** (2026-11-30 09:00): Plan the <big> trip\n\n**alice** (2026-11-30 09:01): to Lisbon',
    );
    expect(readablePrompt('  plain text ')).toBe('plain text');
  });

  it('builds a-z0-9- slugs of at most 40 characters from the words only', () => {
    expect(archiveSlug(PROMPT)).toBe('plan-the-big-trip-to-lisbon');
    const long = archiveSlug('Ünïcödé words and a very long sentence that goes on and on and on');
    expect(long).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(long.startsWith('unicode-words')).toBe(true);
    expect(long.endsWith('-')).toBe(false);
    expect(archiveSlug('日本語だけ')).toBe('conversation');
    expect(archiveSlug('')).toBe('conversation');
  });
});

describe('renderMarkdown', () => {
  it('titles the file by the first user words and lists the turns', () => {
    const at = new Date('2026-11-30T12:00:00Z');
    const md = renderMarkdown(transcriptTurns(transcript()), at, 'auto');
    expect(md.split('\n')[0]).toBe('# Plan the <big> trip');
    expect(md).toContain('before an automatic compaction');
    expect(md).toContain('## User\n\n**bob & co** (2026-11-30 09:00): Plan the <big> trip');
    expect(md).toContain('## Assistant\n\nFlights found.');
    expect(md).not.toContain('huge');
  });
});

describe('writeArchive', () => {
  it('never overwrites: a second archive of the same name gets -2, and no temp file is left', () => {
    mkdirSync(path.join(dir, 'conversations'));
    // What a runner killed mid-write leaves behind.
    writeFileSync(path.join(dir, 'conversations', '.2026-11-29-old.4242.tmp'), 'half');
    const first = writeArchive(path.join(dir, 'conversations'), '2026-11-30-trip', 'one');
    const second = writeArchive(path.join(dir, 'conversations'), '2026-11-30-trip', 'two');
    expect(path.basename(first)).toBe('2026-11-30-trip.md');
    expect(path.basename(second)).toBe('2026-11-30-trip-2.md');
    expect(readFileSync(first, 'utf8')).toBe('one');
    expect(readFileSync(second, 'utf8')).toBe('two');
    expect(readdirSync(path.join(dir, 'conversations')).sort()).toEqual([
      '2026-11-30-trip-2.md',
      '2026-11-30-trip.md',
    ]);
  });
});

describe('archiveHooks', () => {
  const at = new Date(2026, 10, 30, 23, 30);
  function hookInput(transcriptPath: string): HookInput {
    return {
      hook_event_name: 'PreCompact',
      trigger: 'auto',
      custom_instructions: null,
      session_id: 's',
      transcript_path: transcriptPath,
      cwd: dir,
    };
  }
  async function runHook(input: HookInput, logs: string[]) {
    const hook = archiveHooks({
      groupDir: dir,
      log: (level, msg) => logs.push(`${level} ${msg}`),
      now: () => at,
    }).PreCompact[0].hooks[0];
    return hook(input, undefined, { signal: new AbortController().signal });
  }

  it('writes groups/<folder>/conversations/<local day>-<slug>.md and logs it', async () => {
    const file = path.join(dir, 'session.jsonl');
    writeFileSync(file, transcript());
    const logs: string[] = [];
    expect(await runHook(hookInput(file), logs)).toEqual({ continue: true });
    const name = `${localDay(at)}-plan-the-big-trip-to-lisbon.md`;
    expect(name.startsWith('2026-11-30-')).toBe(true);
    expect(readdirSync(path.join(dir, 'conversations'))).toEqual([name]);
    expect(logs).toEqual([
      `info archived the conversation before compaction: ${path.join(dir, 'conversations', name)}`,
    ]);
  });

  it('logs and lets compaction go on when the transcript cannot be read', async () => {
    const logs: string[] = [];
    expect(await runHook(hookInput(path.join(dir, 'missing.jsonl')), logs)).toEqual({ continue: true });
    expect(logs).toEqual([expect.stringMatching(/^warn could not archive the conversation.*ENOENT/)]);
  });
});
