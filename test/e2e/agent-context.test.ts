// What the agent is told, end to end (SPEC §2.7, §6): `nanoclaw chat --json` with
// the real runner and each engine (Claude Code, lite) in bubblewrap, the scripted fake model
// recording the exact prompt it receives: the context header (who, which chat,
// the owner's time zone and local time), replies with their quoted message, a
// scheduled run's marker, and the starter CLAUDE.md of a new group.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import type { RecordedRequest, StaticTurn } from '../support/fake-model-server.js';
import { localTimeFormatter } from '../../src/runs/prompt-context.js';
import { answeredToolResult, useAgentFixture } from './agent-support.js';

const fixture = useAgentFixture();
const ZONE = 'Europe/Berlin';
const LOCAL_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d/.source;

type Block = { type: string; text?: unknown };

/** The text blocks of the newest user message: Claude Code adds its reminders (CLAUDE.md…) as blocks of their own. */
function userBlocks(request: RecordedRequest): string[] {
  const messages =
    (request.body as { messages?: Array<{ role: string; content: unknown }> } | null)?.messages ?? [];
  const content = messages.filter((m) => m.role === 'user').at(-1)?.content;
  const blocks: Block[] =
    typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? content : [];
  return blocks.flatMap((b) => (b.type === 'text' && typeof b.text === 'string' ? [b.text] : []));
}

/** Where the engine put the group's memory: Claude Code in a user block of its own, lite in the system prompt. */
function memoryText(request: RecordedRequest, engine: 'claude-code' | 'lite'): string {
  if (engine === 'claude-code') return userBlocks(request).join('\n');
  const system = (request.body as { system?: Array<{ text?: unknown }> } | null)?.system ?? [];
  return system.map((b) => (typeof b.text === 'string' ? b.text : '')).join('\n');
}

/** The block our host wrote: it starts with the context header. */
function hostPrompt(request: RecordedRequest): string {
  const found = userBlocks(request).filter((b) => b.startsWith('<context '));
  if (found.length !== 1)
    throw new Error(`expected one host prompt block, got ${JSON.stringify(userBlocks(request))}`);
  return found[0];
}

/**
 * A local time the prompt showed: an instant within the test (to the second it
 * was cut to), written with the offset the zone has at that instant.
 */
function expectLocalTime(shown: string, fromMs: number, toMs: number): void {
  const ms = Date.parse(shown);
  expect(ms).toBeGreaterThanOrEqual(Math.floor(fromMs / 1000) * 1000);
  expect(ms).toBeLessThanOrEqual(toMs);
  expect(localTimeFormatter(ZONE)(ms)).toBe(shown);
}

for (const engine of ['claude-code', 'lite'] as const)
  describe(`the context the agent gets (chat --json, ${engine}, fake model)`, () => {
    it('a group prompt: who and where, local times in the owner zone, and what a reply quotes', async () => {
      const { fake, home } = await fixture.setUp(() => ({ text: 'booked' }), engine);
      const env = { ...home.env, TZ: ZONE };
      const added = await runCli(
        ['groups', 'add', 'local:family', '--name', 'Family', '--folder', 'family', '--trigger', '@Andy'],
        env,
      );
      expect(added.code, added.stderr).toBe(0);
      const startMs = Date.now();
      const result = await runCli(
        ['chat', '--json'],
        env,
        [
          { text: 'dinner at 8?', id: 'q1', sender: 'ann', chat: 'local:family' },
          { text: '@Andy yes, book it', replyTo: 'q1', sender: 'bo', chat: 'local:family' },
        ]
          .map((line) => JSON.stringify(line) + '\n')
          .join(''),
      );
      const endMs = Date.now();
      expect(result.code, result.stderr).toBe(0);

      const [request] = fake.conversationRequests();
      const prompt = hostPrompt(request);
      const match = new RegExp(
        [
          `^<context assistant="Andy" chat="Family" chat_id="local:family" chat_type="group" channel="local" time_zone="Europe/Berlin" now="(${LOCAL_TIME})"/>`,
          '<messages>',
          `<message sender="ann" time="(${LOCAL_TIME})">dinner at 8\\?</message>`,
          `<message sender="bo" time="(${LOCAL_TIME})" reply_to="q1"><quoted sender="ann">dinner at 8\\?</quoted>@Andy yes, book it</message>`,
          '</messages>$',
        ].join('\n'),
      ).exec(prompt);
      expect(match, prompt).not.toBeNull();
      for (const shown of match!.slice(1)) expectLocalTime(shown, startMs, endMs);

      // The new group got a starter CLAUDE.md, and the engine read it as the group's memory.
      const memory = fs.readFileSync(path.join(home.dir, 'groups', 'family', 'CLAUDE.md'), 'utf8');
      expect(memory).toContain(
        'You are Andy, the assistant in the group chat "Family" (id local:family) on local.',
      );
      expect(memory).toContain('conversations/');
      expect(memoryText(request, engine)).toContain(memory.trim());
    });

    it('keeps a group CLAUDE.md the owner wrote', async () => {
      const { fake, home } = await fixture.setUp(() => ({ text: 'ok' }), engine);
      const added = await runCli(
        ['groups', 'add', 'local:team', '--name', 'Team', '--folder', 'team', '--trigger', '@Andy'],
        home.env,
      );
      expect(added.code, added.stderr).toBe(0);
      fs.writeFileSync(
        path.join(home.dir, 'groups', 'team', 'CLAUDE.md'),
        '# Team\nOWNER-NOTES: be brief.\n',
      );
      const result = await runCli(['chat', '--json'], home.env, '{"text":"@Andy hi","chat":"local:team"}\n');
      expect(result.code, result.stderr).toBe(0);
      expect(fs.readFileSync(path.join(home.dir, 'groups', 'team', 'CLAUDE.md'), 'utf8')).toBe(
        '# Team\nOWNER-NOTES: be brief.\n',
      );
      expect(memoryText(fake.conversationRequests()[0], engine)).toContain('OWNER-NOTES: be brief.');
    });

    it('a scheduled run is marked: which task, its schedule, nobody waiting, output to the chat', async () => {
      let dueAt = '';
      const { fake, home } = await fixture.setUp((req): StaticTurn => {
        const result = answeredToolResult(req);
        if (result) return { text: `scheduling said: ${result.isError ? 'error' : 'ok'} ${result.text}` };
        const blocks = userBlocks(req).join('\n');
        if (blocks.includes('<scheduled_task ')) return { text: 'REMINDER: stretch' };
        if (blocks.includes('remind me to stretch')) {
          dueAt = new Date(Date.now() + 2000).toISOString();
          return {
            toolUse: {
              name: engine === 'lite' ? 'schedule_task' : 'mcp__nanoclaw__schedule_task',
              input: {
                prompt: 'Remind the owner to <stretch> & drink',
                schedule_type: 'once',
                schedule_value: dueAt,
              },
            },
          };
        }
        return { text: 'unexpected request' };
      }, engine);
      const env = { ...home.env, TZ: ZONE };
      const chat = fixture.chat(env);
      const startMs = Date.now();
      chat.send({ text: 'remind me to stretch' });
      const [ack] = await chat.waitFor((lines) => lines.length >= 1);
      expect(ack.text).toMatch(/^scheduling said: ok /);
      const taskId = /"id":"(task-[0-9a-f]+)"/.exec(ack.text)?.[1];
      await chat.waitFor((lines) => lines.some((l) => l.text === 'REMINDER: stretch'));
      expect(await chat.end()).toBe(0);
      const endMs = Date.now();

      // The owner's own chat is a direct chat.
      const first = hostPrompt(fake.conversationRequests()[0]);
      expect(first).toMatch(
        new RegExp(
          `^<context assistant="Andy" chat="Local terminal" chat_id="local:main" chat_type="direct" channel="local" time_zone="Europe/Berlin" now="${LOCAL_TIME}"/>\n<messages>\n`,
        ),
      );

      const taskRequest = fake
        .conversationRequests()
        .find((r) => userBlocks(r).join('\n').includes('<scheduled_task '));
      const prompt = hostPrompt(taskRequest!);
      const match = new RegExp(
        `^<context assistant="Andy" chat="Local terminal" chat_id="local:main" chat_type="direct" channel="local" time_zone="Europe/Berlin" now="(${LOCAL_TIME})"/>\n`,
      ).exec(prompt);
      expect(match, prompt).not.toBeNull();
      expectLocalTime(match![1], startMs, endMs);
      expect(prompt.slice(match![0].length)).toBe(
        [
          `<scheduled_task id="${taskId}" schedule_type="once" schedule_value="${dueAt}">`,
          'This is a scheduled task, not a live conversation: no human is waiting for an answer right now. ' +
            'Your final output is sent to this chat as a message (wrap it in <internal>…</internal> to send nothing).',
          '<task>Remind the owner to &lt;stretch&gt; &amp; drink</task>',
          '</scheduled_task>',
        ].join('\n'),
      );
    });
  });
