// The agent's nanoclaw tools end to end, for both engines: Claude Code in bwrap
// calls mcp__nanoclaw__* tools (lite calls them by name), the host answers them
// with the run's own identity (SPEC §7), and the effects show up in the chat,
// the task list and the audit log.

import { describe, expect, it } from 'vitest';
import { runCli, type CliHome } from '../support/cli.js';
import { requestText, type StaticTurn } from '../support/fake-model-server.js';
import {
  answeredToolResult,
  useAgentFixture,
  auditRecords,
  chatLines,
  lastUserText,
  openHomeStore,
  toolResultCount,
} from './agent-support.js';

const fixture = useAgentFixture();

async function addFamily(h: CliHome): Promise<void> {
  const added = await runCli(
    ['groups', 'add', 'local:family', '--name', 'Family', '--folder', 'family', '--trigger', '@Andy'],
    h.env,
  );
  expect(added.code, added.stderr).toBe(0);
}

// Both engines offer the same nanoclaw tools: Claude Code as MCP tools, lite by their own names.
for (const engine of ['claude-code', 'lite'] as const)
  describe(`nanoclaw tools called by the real agent (${engine})`, () => {
    const tool = (name: string, input: unknown): StaticTurn => ({
      toolUse: { name: engine === 'lite' ? name : `mcp__nanoclaw__${name}`, input },
    });

    it('schedule_task (once, 2 s ahead) fires and its output reaches the chat', async () => {
      let dueAtMs = 0;
      const { fake, home } = await fixture.setUp((req) => {
        const result = answeredToolResult(req);
        if (result) return { text: `scheduling said: ${result.isError ? 'error' : 'ok'} ${result.text}` };
        const prompt = lastUserText(req);
        if (prompt.includes('TASK-PROMPT')) return { text: 'REMINDER: drink water' };
        if (prompt.includes('remind me in two seconds')) {
          dueAtMs = Date.now() + 2000;
          return tool('schedule_task', {
            prompt: 'TASK-PROMPT: remind the owner to drink water',
            schedule_type: 'once',
            schedule_value: new Date(dueAtMs).toISOString(),
            context_mode: 'isolated',
          });
        }
        return { text: 'unexpected request' };
      }, engine);
      const chat = fixture.chat(home.env);
      chat.send({ text: 'remind me in two seconds' });
      const [ack] = await chat.waitFor((lines) => lines.length >= 1);
      expect(ack.text).toMatch(/^scheduling said: ok \{.*"scheduleType":"once"/);
      const taskId = /"id":"(task-[0-9a-f]+)"/.exec(ack.text)?.[1];
      expect(taskId).toBeDefined();

      await chat.waitFor((lines) => lines.some((l) => l.text === 'REMINDER: drink water'));
      const firedAtMs = Date.now();
      expect(await chat.end()).toBe(0);
      expect(chat.lines).toMatchObject([ack, { chat: 'local:main', text: 'REMINDER: drink water' }]);
      // The task run's request came after the due time, as a fresh (isolated) conversation.
      const taskRequest = fake.conversationRequests().find((r) => lastUserText(r).includes('TASK-PROMPT'));
      expect(taskRequest).toBeDefined();
      expect(requestText(taskRequest!)).not.toContain('remind me in two seconds');
      expect(firedAtMs).toBeGreaterThanOrEqual(dueAtMs);
      expect(firedAtMs - dueAtMs).toBeLessThan(8000);

      const tasks = await runCli(['tasks', 'list'], home.env);
      expect(tasks.stdout).toContain(taskId);
      expect(tasks.stdout).toMatch(/ main +completed +once /);
    });

    it('list_tasks shows a non-main group only its own tasks (main sees all)', async () => {
      const { fake, home } = await fixture.setUp((req) => {
        const result = answeredToolResult(req);
        if (result) return { text: `${result.isError ? 'ERROR' : 'TASKS'} ${result.text}` };
        if (lastUserText(req).includes('list my tasks')) return tool('list_tasks', {});
        return { text: 'unexpected request' };
      }, engine);
      await addFamily(home);
      const main = await runCli(
        ['groups', 'add', 'local:main', '--name', 'Main', '--folder', 'main', '--main', '--no-trigger'],
        home.env,
      );
      expect(main.code, main.stderr).toBe(0);
      const store = openHomeStore(home);
      const far = Date.now() + 7 * 24 * 3600_000;
      for (const [id, folder, jid] of [
        ['task-main-only', 'main', 'local:main'],
        ['task-family-own', 'family', 'local:family'],
      ]) {
        store.createTask({
          id,
          groupFolder: folder,
          chatJid: jid,
          prompt: `weekly ${folder} summary`,
          scheduleType: 'cron',
          scheduleValue: '0 9 * * 1',
          contextMode: 'group',
          nextRunAt: far,
        });
      }
      store.close();

      const input = [
        { text: '@Andy list my tasks', sender: 'alice', chat: 'local:family' },
        { text: 'list my tasks', chat: 'local:main' },
      ];
      const result = await runCli(
        ['chat', '--json'],
        home.env,
        input.map((m) => JSON.stringify(m)).join('\n') + '\n',
      );
      expect(result.code, result.stderr).toBe(0);
      const lines = chatLines(result.stdout);
      const family = lines.find((l) => l.chat === 'local:family')?.text ?? '';
      expect(family).toMatch(/^TASKS /);
      expect(family).toContain('task-family-own');
      expect(family).not.toContain('task-main-only');
      const mainText = lines.find((l) => l.chat === 'local:main')?.text ?? '';
      expect(mainText).toMatch(/^TASKS /);
      expect(mainText).toContain('task-family-own');
      expect(mainText).toContain('task-main-only');
      expect(fake.conversationRequests()).toHaveLength(4);
    });

    it('refuses a non-main group cross-chat send_message and cross-group schedule_task, with audit', async () => {
      const { fake, home } = await fixture.setUp((req) => {
        if (!lastUserText(req).includes('do something sneaky') && toolResultCount(req) === 0)
          return { text: 'unexpected request' };
        switch (toolResultCount(req)) {
          case 0:
            return tool('send_message', { text: 'FORGED message into main', chat_jid: 'local:main' });
          case 1:
            return tool('schedule_task', {
              prompt: 'FORGED task for main',
              schedule_type: 'once',
              schedule_value: new Date(Date.now() + 3600_000).toISOString(),
              target_group_folder: 'main',
            });
          default:
            return { text: 'both refused' };
        }
      }, engine);
      await addFamily(home);
      const result = await runCli(
        ['chat', '--json'],
        home.env,
        `${JSON.stringify({ text: '@Andy do something sneaky', sender: 'mallory', chat: 'local:family' })}\n`,
      );
      expect(result.code, result.stderr).toBe(0);

      // The model was told no, twice, as error tool results.
      const requests = fake.conversationRequests();
      expect(requests).toHaveLength(3);
      const sendAnswer = answeredToolResult(requests[1]);
      const scheduleAnswer = answeredToolResult(requests[2]);
      expect(sendAnswer?.isError).toBe(true);
      expect(sendAnswer?.text).toMatch(/send_message refused: only the main group can send to another chat/);
      expect(scheduleAnswer?.isError).toBe(true);
      expect(scheduleAnswer?.text).toMatch(
        /schedule_task refused: only the main group can schedule tasks for another group/,
      );

      // Nothing changed: no message in main, no task.
      expect(result.stdout).not.toContain('FORGED');
      expect(chatLines(result.stdout)).toMatchObject([{ chat: 'local:family', text: 'both refused' }]);
      expect((await runCli(['tasks', 'list'], home.env)).stdout).toContain('no tasks');

      const refusals = (await auditRecords(home)).filter((r) => r.action === 'tool_call');
      expect(refusals.map((r) => [r.group, r.reason, r.target]).sort()).toEqual([
        ['family', 'not_authorized', 'schedule_task:main'],
        ['family', 'not_authorized', 'send_message:local:main'],
      ]);
      for (const r of refusals) expect(r.runId).toMatch(/^family-/);
    });
  });
