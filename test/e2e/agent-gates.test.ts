// Gates before a run starts, end to end through `nanoclaw chat --json`: the mount
// policy of SPEC §9 (outside the allowlist, a symlink into ~/.ssh, an allowed
// read-only mount seen from inside bwrap) and a missing model credential. A
// refused start reaches no model, tells the chat why, and leaves an audit record.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdditionalMount } from '../../src/core/types.js';
import { makeCliHome, runCli, type CliHome } from '../support/cli.js';
import { requestText, startFakeModelServer, type FakeModelServer } from '../support/fake-model-server.js';
import {
  answeredToolResult,
  assertAgentPrerequisites,
  auditRecords,
  chatLines,
  lastUserText,
  makeAgentHome,
  openHomeStore,
  routed,
  shellTool,
} from './agent-support.js';

let home: CliHome | undefined;
let fake: FakeModelServer | undefined;
let userHome: string | undefined;

beforeAll(() => assertAgentPrerequisites());
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  home?.cleanup();
  home = undefined;
  if (userHome) fs.rmSync(userHome, { recursive: true, force: true });
  userHome = undefined;
});

/** A host user's home with an SSH key, an allowed projects root and a symlink from it into ~/.ssh. */
function makeUserHome(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-user-'));
  // The sandbox user (uid 1000) must be able to reach the allowed mount.
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, '.ssh'), { mode: 0o700 });
  fs.writeFileSync(path.join(dir, '.ssh', 'id_rsa'), 'PRIVATE-KEY-MATERIAL-do-not-leak\n');
  fs.mkdirSync(path.join(dir, 'projects', 'docs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'projects', 'docs', 'readme.txt'), 'DOCS-CONTENT-42\n');
  fs.symlinkSync(path.join(dir, '.ssh'), path.join(dir, 'projects', 'link'));
  fs.mkdirSync(path.join(dir, 'elsewhere'));
  fs.writeFileSync(path.join(dir, 'elsewhere', 'notes.txt'), 'outside the root\n');
  return dir;
}

describe('run start gates', () => {
  // The agent reads the allowed mount, so this runs per engine; the credential gate is the host's alone.
  for (const engine of ['claude-code', 'lite'] as const)
    it(`refuses mounts outside the allowlist or through a symlink into ~/.ssh; an allowed one is read-only inside (${engine})`, async () => {
      userHome = makeUserHome();
      const command =
        'cat /workspace/extra/docs/readme.txt; ls /workspace/extra; ' +
        'touch /workspace/extra/docs/written.txt 2>&1; echo "touch rc=$?"';
      fake = await startFakeModelServer({
        script: routed((req) => {
          const result = answeredToolResult(req);
          if (result) return { text: `inside: ${result.text}` };
          if (lastUserText(req).includes('read the docs')) return { toolUse: shellTool(engine, command) };
          return { text: 'unexpected request' };
        }),
      });
      home = makeAgentHome(fake, { HOME: userHome, NANOCLAW_ENGINE: engine });
      fs.writeFileSync(
        path.join(home.env.NANOCLAW_CONFIG_DIR!, 'mount-allowlist.json'),
        JSON.stringify({ allowedRoots: [{ path: '~/projects', allowReadWrite: false }] }),
      );
      const store = openHomeStore(home);
      const groups: Array<[string, AdditionalMount]> = [
        ['outside', { hostPath: path.join(userHome, 'elsewhere') }],
        ['sneaky', { hostPath: '~/projects/link', containerPath: 'link' }],
        ['docs', { hostPath: '~/projects/docs', containerPath: 'docs' }],
      ];
      for (const [folder, mount] of groups) {
        store.addGroup({
          jid: `local:${folder}`,
          name: folder,
          folder,
          trigger: '@Andy',
          requiresTrigger: false,
          isMain: false,
          containerConfig: { additionalMounts: [mount] },
          dailyTokenBudget: null,
          allowedSenders: null,
          addedAt: new Date().toISOString(),
        });
      }
      store.close();

      const input = [
        { text: 'outside: read the notes', chat: 'local:outside' },
        { text: 'sneaky: read the key', chat: 'local:sneaky' },
        { text: 'please read the docs', chat: 'local:docs' },
      ];
      const result = await runCli(
        ['chat', '--json'],
        home.env,
        input.map((m) => `${JSON.stringify(m)}\n`).join(''),
      );
      expect(result.code, result.stderr).toBe(0);
      const lines = chatLines(result.stdout);
      const said = (chat: string): string[] => lines.filter((l) => l.chat === chat).map((l) => l.text);

      // (a) outside the allowed root, (b) a symlink under the root that resolves into ~/.ssh.
      expect(said('local:outside')).toEqual([expect.stringMatching(/^I couldn't start: Mount refused/)]);
      expect(said('local:outside')[0]).toContain(
        `"${path.join(userHome, 'elsewhere')}" is not under an allowed root`,
      );
      expect(said('local:sneaky')).toEqual([expect.stringMatching(/^I couldn't start: Mount refused/)]);
      expect(said('local:sneaky')[0]).toMatch(
        /"~\/projects\/link" is refused: it resolves to a path containing "\.ssh"/,
      );

      // Neither refused group reached the model; only the docs run did.
      const requests = fake.conversationRequests();
      expect(requests).toHaveLength(2);
      for (const req of requests) {
        expect(requestText(req)).toContain('please read the docs');
        expect(requestText(req)).not.toMatch(/outside: read|sneaky: read|PRIVATE-KEY-MATERIAL/);
      }
      const mountAudit = (await auditRecords(home)).filter((r) => r.action === 'mount');
      expect(mountAudit.map((r) => [r.group, r.reason, r.target]).sort()).toEqual([
        ['outside', 'outside_allowed_roots', path.join(userHome, 'elsewhere')],
        ['sneaky', 'blocked_pattern', '~/projects/link'],
      ]);

      // (c) the allowed mount is there, read-only, and nothing else of the root is.
      expect(said('local:docs')).toHaveLength(1);
      const inside = said('local:docs')[0];
      expect(inside).toContain('DOCS-CONTENT-42');
      expect(inside).toMatch(/Read-only file system/);
      expect(inside).toMatch(/touch rc=1/);
      expect(inside).not.toContain('link');
      expect(fs.existsSync(path.join(userHome, 'projects', 'docs', 'written.txt'))).toBe(false);
    });

  it('refuses to start without a model credential, tells the chat, and audits it', async () => {
    fake = await startFakeModelServer({ script: [{ text: 'must not be asked' }] });
    home = makeCliHome({ NANOCLAW_ENGINE: 'claude-code', ANTHROPIC_BASE_URL: fake.url });
    const result = await runCli(['chat', '--json'], home.env, '{"text":"hello?"}\n');
    expect(result.code, result.stderr).toBe(0);
    expect(chatLines(result.stdout)).toEqual([
      { chat: 'local:main', text: expect.stringMatching(/^I couldn't start: .*credential/) },
    ]);
    expect(result.stdout).toContain('ANTHROPIC_API_KEY');
    expect(fake.requests).toEqual([]);
    const records = (await auditRecords(home)).filter((r) => r.action === 'run_start');
    expect(records).toEqual([expect.objectContaining({ group: 'main', reason: 'credential_missing' })]);
  });
});
