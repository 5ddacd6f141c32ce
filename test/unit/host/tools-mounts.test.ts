// register_group's mounts and list_groups' chat listing through the real
// ToolHost and SQLite: mounts are judged by the sandbox's own mount policy (a
// refusal names the reason, saves nothing and leaves one `mount` audit record),
// and main's agent sees the same listing as `nanoclaw chats list`.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chatListings } from '../../../src/core/chats.js';
import type { Group } from '../../../src/core/types.js';
import type { ToolMountPolicy } from '../../../src/runs/tools.js';
import { loadMountAllowlist } from '../../../src/sandbox/mount-policy.js';
import { buildTestHost, type TestHost } from '../../support/test-host.js';

let t: TestHost;
let main: Group;
let family: Group;
let policyDir: string;
let projects: string;
let mountPolicy: ToolMountPolicy;

beforeEach(async () => {
  t = buildTestHost();
  main = t.addGroup({ jid: 'fake:main', folder: 'main', isMain: true, requiresTrigger: false });
  family = t.addGroup({ jid: 'fake:family', folder: 'family' });
  policyDir = t.config.configDir;
  projects = path.join(t.dir, 'projects');
  fs.mkdirSync(path.join(projects, 'webapp'), { recursive: true });
  fs.mkdirSync(path.join(t.dir, 'elsewhere'));
  fs.mkdirSync(policyDir, { recursive: true });
  fs.writeFileSync(
    path.join(policyDir, 'mount-allowlist.json'),
    JSON.stringify({ allowedRoots: [{ path: projects, allowReadWrite: false }] }),
  );
  mountPolicy = { loadAllowlist: () => loadMountAllowlist(policyDir), homeDir: t.dir };
  await t.host.start();
});
afterEach(() => t.cleanup());

const call = (group: Group, name: string, args: unknown) =>
  t.host.tools.handle({ runId: 'run-1', group, mountPolicy }, name, args);

const register = (jid: string, folder: string, mounts: unknown) =>
  call(main, 'register_group', { jid, name: folder, folder, trigger: '@Andy', mounts });

describe('register_group mounts', () => {
  it('stores an allowed mount as requested, with no audit record', async () => {
    const answer = await register('local:dev', 'dev', [
      { hostPath: `${projects}/webapp`, containerPath: 'web' },
    ]);
    expect(answer).toMatchObject({ ok: true });
    expect(t.host.store.getGroupByJid('local:dev')?.containerConfig).toEqual({
      additionalMounts: [{ hostPath: `${projects}/webapp`, containerPath: 'web' }],
    });
    expect(t.host.store.listAudit()).toEqual([]);
  });

  it('refuses a mount outside the allowed roots: reason to the agent, nothing saved, one audit record', async () => {
    const outside = path.join(t.dir, 'elsewhere');
    const answer = await register('local:dev', 'dev', [{ hostPath: outside }]);
    expect(answer.ok).toBe(false);
    expect(answer.ok ? '' : answer.error).toMatch(
      /^Mount refused for group "dev": mounts\[0\]\.hostPath ".*elsewhere" is not under an allowed root \(allowed: .*projects\)/,
    );
    expect(t.host.store.getGroupByJid('local:dev')).toBeUndefined();
    expect(fs.existsSync(path.join(t.config.paths.groupsDir, 'dev'))).toBe(false);
    expect(t.host.store.listAudit()).toEqual([
      expect.objectContaining({
        group: 'dev',
        runId: 'run-1',
        action: 'mount',
        reason: 'outside_allowed_roots',
        target: outside,
      }),
    ]);
  });

  it('refuses read-write under a read-only root and a secret-looking path, naming each reason', async () => {
    fs.mkdirSync(path.join(projects, '.aws'));
    const rw = await register('local:a', 'a', [{ hostPath: `${projects}/webapp`, readonly: false }]);
    expect(rw.ok ? '' : rw.error).toMatch(
      /mounts\[0\]\.readonly is false but the allowed root .* is read-only/,
    );
    const secret = await register('local:b', 'b', [{ hostPath: `${projects}/.aws` }]);
    expect(secret.ok ? '' : secret.error).toMatch(/contains "\.aws", which may hold secrets/);
    expect(t.host.store.listAudit().map((r) => [r.group, r.action, r.reason])).toEqual([
      ['a', 'mount', 'readonly_root'],
      ['b', 'mount', 'blocked_pattern'],
    ]);
    expect(t.host.store.listGroups().map((g) => g.folder)).toEqual(['main', 'family']);
  });

  it('allows no mount without a mount policy or with no allowlist file', async () => {
    const bare = await t.host.tools.handle({ runId: 'run-2', group: main }, 'register_group', {
      jid: 'local:dev',
      name: 'dev',
      folder: 'dev',
      trigger: '@Andy',
      mounts: [{ hostPath: `${projects}/webapp` }],
    });
    expect(bare.ok ? '' : bare.error).toMatch(/no mount allowlist exists/);
    fs.rmSync(path.join(policyDir, 'mount-allowlist.json'));
    const none = await register('local:dev', 'dev', [{ hostPath: `${projects}/webapp` }]);
    expect(none.ok ? '' : none.error).toMatch(/no mount allowlist exists/);
    expect(t.host.store.listAudit().map((r) => r.reason)).toEqual(['no_allowlist', 'no_allowlist']);
  });

  it('tells the agent when the allowlist file is broken, and rejects malformed mount entries', async () => {
    fs.writeFileSync(path.join(policyDir, 'mount-allowlist.json'), '{not json');
    const broken = await register('local:dev', 'dev', [{ hostPath: `${projects}/webapp` }]);
    expect(broken.ok ? '' : broken.error).toMatch(/mount allowlist cannot be used .*ask the owner to fix it/);
    const malformed = await register('local:dev', 'dev', [
      { hostPath: `${projects}/webapp`, writable: true },
    ]);
    expect(malformed.ok ? '' : malformed.error).toMatch(/invalid arguments for register_group: mounts\.0/);
    expect(t.host.store.getGroupByJid('local:dev')).toBeUndefined();
  });

  it('is main-only like the rest of register_group', async () => {
    const answer = await call(family, 'register_group', {
      jid: 'local:dev',
      name: 'dev',
      folder: 'dev',
      trigger: '@Andy',
      mounts: [{ hostPath: `${projects}/webapp` }],
    });
    expect(answer.ok).toBe(false);
    expect(t.host.store.listAudit()).toEqual([
      expect.objectContaining({ action: 'tool_call', reason: 'not_authorized' }),
    ]);
  });
});

describe('list_groups', () => {
  it('gives main the same listing as chats list: channel, name, registration with mounts and timeout', async () => {
    const store = t.host.store;
    store.upsertChat({
      jid: 'fake:family',
      name: 'Fam chat',
      channel: 'fake',
      timestamp: '2026-01-02T00:00:00Z',
    });
    store.upsertChat({
      jid: 'fake:stranger',
      name: 'Stranger',
      channel: 'fake',
      timestamp: '2026-01-03T00:00:00Z',
    });
    store.updateGroupSettings('fake:family', {
      containerConfig: { runTimeoutMs: 600_000, additionalMounts: [{ hostPath: `${projects}/webapp` }] },
    });
    const answer = await call(main, 'list_groups', {});
    expect(answer).toEqual({ ok: true, result: chatListings(store.listChats(), store.listGroups()) });
    expect(answer.ok && answer.result).toEqual([
      {
        jid: 'fake:stranger',
        name: 'Stranger',
        channel: 'fake',
        lastActivity: '2026-01-03T00:00:00Z',
        registered: null,
      },
      {
        jid: 'fake:family',
        name: 'family',
        channel: 'fake',
        lastActivity: '2026-01-02T00:00:00Z',
        registered: {
          folder: 'family',
          trigger: '@Andy',
          requiresTrigger: true,
          isMain: false,
          allowedSenders: null,
          mounts: [{ hostPath: `${projects}/webapp` }],
          runTimeoutMs: 600_000,
        },
      },
    ]);
  });
});
