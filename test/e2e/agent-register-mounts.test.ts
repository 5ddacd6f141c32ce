// Main's agent registers groups with additional mounts (Claude Code in bwrap,
// scripted fake model): a mount under an allowed root is stored and the new
// group's own sandbox sees it read-only; a mount outside the roots is refused
// with the reason in the tool result, nothing is registered, and the refusal is
// in the audit log. list_groups shows the chats with their registration.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { requestText, type StaticTurn } from '../support/fake-model-server.js';
import {
  answeredToolResult,
  auditRecords,
  lastUserText,
  toolResultCount,
  useAgentFixture,
} from './agent-support.js';

const fixture = useAgentFixture();

const tool = (name: string, input: unknown): StaticTurn => ({
  toolUse: { name: `mcp__nanoclaw__${name}`, input },
});

describe('register_group with mounts, called by the real agent', () => {
  it('registers an allowed mount, refuses a disallowed one with its reason, and the new group sees its mount', async () => {
    let allowed = '';
    let outside = '';
    const { fake, home } = await fixture.setUp((req) => {
      const prompt = lastUserText(req);
      // The whole conversation: after the Bash result the last user message is only that result.
      if (requestText(req).includes('read the marker')) {
        const result = answeredToolResult(req);
        if (result) return { text: `marker: ${result.text.trim()}` };
        return {
          toolUse: {
            name: 'Bash',
            input: {
              command:
                'cat /workspace/extra/webapp/MARKER; touch /workspace/extra/webapp/written 2>&1 || echo READ-ONLY',
              description: 'read the marker',
            },
          },
        };
      }
      if (!prompt.includes('set up the dev chats') && toolResultCount(req) === 0)
        return { text: 'unexpected request' };
      switch (toolResultCount(req)) {
        case 0:
          return tool('register_group', {
            jid: 'local:dev',
            name: 'Dev',
            folder: 'dev',
            trigger: '@Andy',
            mounts: [{ hostPath: allowed, containerPath: 'webapp' }],
          });
        case 1:
          return tool('register_group', {
            jid: 'local:leak',
            name: 'Leak',
            folder: 'leak',
            trigger: '@Andy',
            mounts: [{ hostPath: outside }],
          });
        case 2:
          return tool('list_groups', {});
        default:
          return { text: 'dev chats set up' };
      }
    });
    const projects = path.join(home.dir, 'projects');
    allowed = path.join(projects, 'webapp');
    outside = path.join(home.dir, 'elsewhere');
    fs.mkdirSync(allowed, { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(allowed, 'MARKER'), 'MOUNTED-OK\n');
    fs.writeFileSync(
      path.join(String(home.env.NANOCLAW_CONFIG_DIR), 'mount-allowlist.json'),
      JSON.stringify({ allowedRoots: [{ path: projects, allowReadWrite: false }] }),
    );

    const chat = fixture.chat(home.env);
    chat.send({ text: 'set up the dev chats' });
    await chat.waitFor((lines) => lines.some((l) => l.text === 'dev chats set up'));
    // Registered by now: the dev chat's message is input to the new group's own run.
    chat.send({ text: '@Andy read the marker', sender: 'alice', chat: 'local:dev' });
    await chat.waitFor((lines) => lines.some((l) => l.chat === 'local:dev'));
    expect(await chat.end()).toBe(0);

    const conversation = fake.conversationRequests();
    const results = conversation
      .map((r) => answeredToolResult(r))
      .filter((r): r is { text: string; isError: boolean } => r !== undefined);
    const [registered, refused, listed] = results;
    expect(registered.isError).toBe(false);
    expect(registered.text).toContain('"folder":"dev"');
    expect(refused.isError).toBe(true);
    expect(refused.text).toMatch(
      /^Mount refused for group "leak": mounts\[0\]\.hostPath ".*elsewhere" is not under an allowed root/,
    );
    expect(listed.isError).toBe(false);
    const listing = JSON.parse(listed.text) as Array<{ jid: string; registered: { folder: string } | null }>;
    expect(listing.find((c) => c.jid === 'local:main')?.registered?.folder).toBe('main');
    expect(listing.some((c) => c.jid === 'local:leak')).toBe(false);

    // The dev group's own sandbox had the mount, read-only.
    expect(chat.lines.find((l) => l.chat === 'local:dev')?.text).toMatch(
      /^marker: MOUNTED-OK\s+[\s\S]*READ-ONLY/,
    );
    expect(fs.existsSync(path.join(allowed, 'written'))).toBe(false);

    const groups = (await runCli(['groups', 'list', '--json'], home.env)).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { folder: string; containerConfig: unknown });
    expect(groups.map((g) => g.folder).sort()).toEqual(['dev', 'main']);
    expect(groups.find((g) => g.folder === 'dev')?.containerConfig).toEqual({
      additionalMounts: [{ hostPath: allowed, containerPath: 'webapp' }],
    });
    const mountAudits = (await auditRecords(home)).filter((r) => r.action === 'mount');
    expect(mountAudits).toEqual([
      expect.objectContaining({ group: 'leak', reason: 'outside_allowed_roots', target: outside }),
    ]);
    expect(mountAudits[0].runId).toMatch(/^main-/);
  });
});
