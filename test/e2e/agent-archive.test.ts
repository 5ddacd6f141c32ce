// The conversation archive through the whole product: `nanoclaw chat --json`,
// the real runner and Claude Code inside bubblewrap, the host's model broker,
// the scripted fake model. The fake reports a context nearly full (a huge
// input_tokens usage), so Claude Code auto-compacts before the next turn; its
// PreCompact hook must have left the transcript in groups/main/conversations/
// on the host.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requestText } from '../support/fake-model-server.js';
import { lastUserText, useAgentFixture } from './agent-support.js';

const fixture = useAgentFixture();

describe('conversation archive through nanoclaw chat --json (bwrap + Claude Code)', () => {
  it('auto-compaction leaves the full transcript in groups/main/conversations/', async () => {
    const { fake, home } = await fixture.setUp((req) => {
      // Claude Code's summarisation request asks for an <analysis> and a <summary> block.
      if (requestText(req).includes('<summary> block')) {
        return { text: '<summary>The user said the teapot is blue.</summary>' };
      }
      if (lastUserText(req).includes('What colour')) return { text: 'Still blue.' };
      // Far past any model's context window: the next turn starts with an auto-compaction.
      return { text: 'Noted: the teapot is blue.', usage: { input_tokens: 5_000_000 } };
    });
    const chat = fixture.chat(home.env);
    chat.send({ text: 'Remember that my teapot is blue', sender: 'alice' });
    await chat.waitFor((lines) => lines.some((l) => l.text === 'Noted: the teapot is blue.'));
    chat.send({ text: 'What colour is my teapot?', sender: 'alice' });
    await chat.waitFor((lines) => lines.some((l) => l.text === 'Still blue.'));
    expect(await chat.end()).toBe(0);

    expect(fake.requests.filter((r) => requestText(r).includes('<summary> block'))).toHaveLength(1);
    const dir = path.join(home.dir, 'groups', 'main', 'conversations');
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{4}-\d{2}-\d{2}-remember-that-my-teapot-is-blue\.md$/);
    const archive = readFileSync(path.join(dir, files[0]), 'utf8');
    expect(archive).toContain('# Remember that my teapot is blue');
    expect(archive).toMatch(/## User\n\n\*\*alice\*\* \([^)]+\): Remember that my teapot is blue/);
    expect(archive).toContain('## Assistant\n\nNoted: the teapot is blue.');
    expect(archive).toContain('before an automatic compaction');
  });
});
