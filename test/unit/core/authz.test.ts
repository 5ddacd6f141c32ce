import { describe, expect, it } from 'vitest';
import { authorizeTool, canSeeAllTasks } from '../../../src/core/authz.js';
import { TOOL_NAMES, type ToolName } from '../../../src/core/protocol.js';

const main = { folder: 'main', isMain: true, chatJid: '111@s.whatsapp.net' };
const family = { folder: 'family', isMain: false, chatJid: '120363000000000001@g.us' };
const OTHER_JID = '120363000000000002@g.us';

type Req = Parameters<typeof authorizeTool>[1];

function expectRefused(caller: typeof family, request: Req): string {
  const decision = authorizeTool(caller, request);
  expect(decision.allowed).toBe(false);
  if (decision.allowed) throw new Error('unreachable');
  expect(decision.reason).toBe('not_authorized');
  expect(decision.message).toContain(request.tool);
  return decision.message;
}

describe('SPEC §7 authorization table', () => {
  it('send_message to own chat: main yes, others yes', () => {
    expect(authorizeTool(main, { tool: 'send_message', targetChatJid: main.chatJid }).allowed).toBe(true);
    expect(authorizeTool(family, { tool: 'send_message', targetChatJid: family.chatJid }).allowed).toBe(true);
    expect(authorizeTool(family, { tool: 'send_message' }).allowed).toBe(true);
  });

  it('send_file follows send_message: own chat for all, other chats for main only', () => {
    expect(authorizeTool(family, { tool: 'send_file' }).allowed).toBe(true);
    expect(authorizeTool(family, { tool: 'send_file', targetChatJid: family.chatJid }).allowed).toBe(true);
    expect(authorizeTool(main, { tool: 'send_file', targetChatJid: OTHER_JID }).allowed).toBe(true);
    expect(expectRefused(family, { tool: 'send_file', targetChatJid: OTHER_JID })).toMatch(
      /only the main group/,
    );
  });

  it('send_message to another chat: main yes, others refused', () => {
    expect(authorizeTool(main, { tool: 'send_message', targetChatJid: OTHER_JID }).allowed).toBe(true);
    const message = expectRefused(family, { tool: 'send_message', targetChatJid: OTHER_JID });
    expect(message).toMatch(/main/);
    expect(message).not.toContain(OTHER_JID);
  });

  it('schedule_task for own group: main yes, others yes', () => {
    expect(authorizeTool(main, { tool: 'schedule_task', targetGroupFolder: 'main' }).allowed).toBe(true);
    expect(authorizeTool(family, { tool: 'schedule_task', targetGroupFolder: 'family' }).allowed).toBe(true);
    expect(authorizeTool(family, { tool: 'schedule_task' }).allowed).toBe(true);
  });

  it('schedule_task for another group: main yes, others refused', () => {
    expect(authorizeTool(main, { tool: 'schedule_task', targetGroupFolder: 'family' }).allowed).toBe(true);
    expectRefused(family, { tool: 'schedule_task', targetGroupFolder: 'work' });
  });

  it('list_tasks: allowed for everyone; main sees all, others own only', () => {
    expect(authorizeTool(main, { tool: 'list_tasks' }).allowed).toBe(true);
    expect(authorizeTool(family, { tool: 'list_tasks' }).allowed).toBe(true);
    expect(canSeeAllTasks(main)).toBe(true);
    expect(canSeeAllTasks(family)).toBe(false);
  });

  const taskTools: ToolName[] = ['get_task', 'update_task', 'pause_task', 'resume_task', 'cancel_task'];
  for (const tool of taskTools) {
    it(`${tool}: main any task, others own tasks only`, () => {
      expect(authorizeTool(main, { tool, taskOwnerFolder: 'family' }).allowed).toBe(true);
      expect(authorizeTool(main, { tool, taskOwnerFolder: 'main' }).allowed).toBe(true);
      expect(authorizeTool(family, { tool, taskOwnerFolder: 'family' }).allowed).toBe(true);
      const message = expectRefused(family, { tool, taskOwnerFolder: 'secret-work' });
      expect(message).not.toContain('secret-work');
      // Without a known owner a non-main group is refused (fail closed).
      expectRefused(family, { tool });
    });
  }

  const mainOnly: ToolName[] = ['list_groups', 'register_group', 'unregister_group', 'read_egress_allowlist'];
  for (const tool of mainOnly) {
    it(`${tool}: main yes, others refused`, () => {
      expect(authorizeTool(main, { tool }).allowed).toBe(true);
      expect(expectRefused(family, { tool })).toMatch(/only the main group/);
    });
  }

  it('covers every tool the protocol knows', () => {
    const covered = new Set<ToolName>([
      'send_message',
      'send_file',
      'schedule_task',
      'list_tasks',
      ...taskTools,
      ...mainOnly,
    ]);
    expect([...TOOL_NAMES].sort()).toEqual([...covered].sort());
  });
});
