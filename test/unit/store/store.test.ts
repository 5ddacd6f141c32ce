import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { StoreVersionError } from '../../../src/store/errors.js';
import { MIGRATIONS, migrate, schemaVersion, type Migration } from '../../../src/store/migrations.js';
import { openStore } from '../../../src/store/store.js';
import { group, message, tempDir, tempStore } from './helpers.js';

describe('openStore', () => {
  it('creates a private parent dir and file, with WAL, NORMAL sync, foreign keys and a busy timeout', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'nested', 'store', 'nanoclaw.db');
    const store = openStore(dbPath, { busyTimeoutMs: 1234 });
    try {
      expect(fs.statSync(path.dirname(dbPath)).mode & 0o777).toBe(0o700);
      expect(fs.statSync(dbPath).mode & 0o777).toBe(0o600);
      expect(store.settings()).toEqual({
        schemaVersion: MIGRATIONS.length,
        journalMode: 'wal',
        synchronous: 'normal',
        foreignKeys: true,
        busyTimeoutMs: 1234,
      });
    } finally {
      store.close();
    }
    // close() is idempotent.
    store.close();
  });

  it('keeps every kind of data across close and reopen', () => {
    const handle = tempStore();
    const { store } = handle;
    store.addGroup(group());
    store.upsertChat({
      jid: 'family@g.us',
      name: 'Family',
      channel: 'whatsapp',
      timestamp: '2025-03-01T09:00:00Z',
    });
    const stored = store.insertMessage(message({ text: 'remember me' }))!;
    store.setCursor('family@g.us', stored.seq);
    store.setSession('family', 'sess');
    const task = store.createTask({
      id: 't1',
      groupFolder: 'family',
      chatJid: 'family@g.us',
      prompt: 'p',
      scheduleType: 'once',
      scheduleValue: '2025-03-02T09:00:00Z',
      contextMode: 'isolated',
      nextRunAt: 5_000,
    });
    store.logTaskRun({
      taskId: 't1',
      startedAt: 1,
      durationMs: 1,
      status: 'success',
      result: 'r',
      error: null,
    });
    store.audit({
      group: 'family',
      runId: 'r',
      action: 'mount',
      target: '/etc',
      reason: 'outside_allowed_roots',
    });
    store.recordUsage({
      groupFolder: 'family',
      runId: 'r',
      taskId: null,
      usage: { inputTokens: 1, outputTokens: 2, cacheReadTokens: 3, cacheWriteTokens: 4 },
      atMs: 1_000,
    });
    const snapshot = {
      groups: store.listGroups(),
      chats: store.listChats(),
      audit: store.listAudit(),
      runs: store.taskRuns('t1'),
    };

    const reopened = handle.reopen();
    expect(reopened.listGroups()).toEqual(snapshot.groups);
    expect(reopened.listChats()).toEqual(snapshot.chats);
    expect(reopened.messagesSince('family@g.us', 0)).toEqual([stored]);
    expect(reopened.getCursor('family@g.us')).toBe(stored.seq);
    expect(reopened.getSession('family')).toBe('sess');
    expect(reopened.getTask('t1')).toEqual(task);
    expect(reopened.taskRuns('t1')).toEqual(snapshot.runs);
    expect(reopened.listAudit()).toEqual(snapshot.audit);
    expect(reopened.usageForRun('r')).toEqual({
      inputTokens: 1,
      outputTokens: 2,
      cacheReadTokens: 3,
      cacheWriteTokens: 4,
    });
    // The sequence continues after a restart.
    expect(reopened.insertMessage(message())!.seq).toBeGreaterThan(stored.seq);
  });

  it('keeps committed messages and outbox items when the process is killed without closing', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'store', 'nanoclaw.db');
    const storeModule = fileURLToPath(new URL('../../../src/store/store.ts', import.meta.url));
    const script = path.join(dir, 'crash.ts');
    fs.writeFileSync(
      script,
      `import { openStore } from ${JSON.stringify(storeModule)};
const store = openStore(${JSON.stringify(dbPath)});
store.insertMessage({ chatJid: 'family@g.us', id: 'm1', sender: 'a', senderName: 'A', text: 'before the crash',
  timestamp: '2025-03-01T10:00:00Z', fromMe: false, isBotMessage: false });
store.enqueueOutbound('family@g.us', ['reply'], 1000);
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
    expect(child.signal, child.stderr).toBe('SIGKILL');

    const store = openStore(dbPath);
    try {
      expect(store.messagesSince('family@g.us', 0).map((m) => m.text)).toEqual(['before the crash']);
      expect(store.pendingOutbound(1000).map((i) => i.text)).toEqual(['reply']);
    } finally {
      store.close();
    }
  });

  it('sees commits of another connection to the same file (the CLI next to the host)', () => {
    const handle = tempStore();
    const cli = openStore(handle.dbPath);
    try {
      cli.addGroup(group());
      expect(handle.store.getGroupByFolder('family')).toBeDefined();
    } finally {
      cli.close();
    }
  });
});

describe('migrations', () => {
  it('has at least two steps so the upgrade path is exercised', () => {
    expect(MIGRATIONS.length).toBeGreaterThanOrEqual(2);
  });

  it('upgrades a database built by an older NanoClaw and keeps its data', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'nanoclaw.db');
    // Simulate the older release: only the first migration, its own writes.
    const old = new Database(dbPath);
    migrate(old, MIGRATIONS.slice(0, 1), dbPath);
    expect(schemaVersion(old)).toBe(1);
    old
      .prepare(
        "INSERT INTO chats (jid, name, channel, last_activity, last_activity_ms) VALUES ('family@g.us', 'Family', 'whatsapp', '2025-03-01T10:00:00Z', 0)",
      )
      .run();
    old
      .prepare(
        `INSERT INTO messages (chat_jid, id, sender, sender_name, text, timestamp, ts_ms, from_me, is_bot_message)
       VALUES ('family@g.us', 'm1', 'alice', 'Alice', 'kept', '2025-03-01T10:00:00Z', 0, 0, 0)`,
      )
      .run();
    old
      .prepare(
        `INSERT INTO groups (jid, folder, name, trigger, requires_trigger, is_main, container_config, daily_token_budget, added_at)
       VALUES ('family@g.us', 'family', 'Family', '@Andy', 1, 0, '{}', NULL, '2025-03-01T09:00:00Z')`,
      )
      .run();
    old.close();

    const store = openStore(dbPath);
    try {
      expect(store.settings().schemaVersion).toBe(MIGRATIONS.length);
      expect(store.messagesSince('family@g.us', 0).map((m) => m.text)).toEqual(['kept']);
      expect(store.getGroupByJid('family@g.us')).toMatchObject({ folder: 'family', trigger: '@Andy' });
      // The table added by the later migration works.
      store.recordUsage({
        groupFolder: 'family',
        runId: 'r1',
        taskId: null,
        usage: { inputTokens: 5, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
        atMs: Date.now(),
      });
      expect(store.tokensUsedOnDay('family', Date.now())).toBe(5);
    } finally {
      store.close();
    }
  });

  it('refuses a database newer than the code with a clear message, leaving it untouched', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'nanoclaw.db');
    const future: Migration = {
      name: 'from the future',
      sql: 'CREATE TABLE future_table (x INTEGER) STRICT;',
    };
    openStore(dbPath, { migrations: [...MIGRATIONS, future] }).close();

    const known = MIGRATIONS.length;
    const attempt = (): unknown => openStore(dbPath);
    expect(attempt).toThrow(StoreVersionError);
    expect(attempt).toThrow(
      `database ${dbPath} is schema version ${known + 1}, this NanoClaw knows up to ${known}; ` +
        'upgrade NanoClaw or restore a backup',
    );
    const raw = new Database(dbPath, { readonly: true });
    try {
      expect(schemaVersion(raw)).toBe(known + 1);
    } finally {
      raw.close();
    }
  });

  it('rolls a failing migration back completely and names it', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, 'nanoclaw.db');
    openStore(dbPath).close();
    const broken: Migration = {
      name: 'half-finished',
      sql: 'CREATE TABLE half (x INTEGER) STRICT; INSERT INTO no_such_table VALUES (1);',
    };
    expect(() => openStore(dbPath, { migrations: [...MIGRATIONS, broken] })).toThrow(
      new RegExp(`migration ${MIGRATIONS.length + 1} \\(half-finished\\) of .* failed: no such table`),
    );
    const raw = new Database(dbPath, { readonly: true });
    try {
      expect(schemaVersion(raw)).toBe(MIGRATIONS.length);
      expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    } finally {
      raw.close();
    }
    // The database still opens with the known migrations.
    openStore(dbPath).close();
  });

  it('is a no-op on an up-to-date database', () => {
    const handle = tempStore();
    handle.store.addGroup(group());
    const reopened = handle.reopen();
    expect(reopened.settings().schemaVersion).toBe(MIGRATIONS.length);
    expect(reopened.listGroups()).toHaveLength(1);
  });
});
