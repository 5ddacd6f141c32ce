// Schema history, versioned by `PRAGMA user_version`. Each migration runs in its
// own IMMEDIATE transaction and bumps user_version inside it, so a crash or a
// failing step leaves the database at the previous version, never half-migrated.
// Append new migrations; never edit a released one (old databases replay them).

import type Database from 'better-sqlite3';
import { StoreVersionError } from './errors.js';

export interface Migration {
  /** Short description, for error messages and `nanoclaw doctor`. */
  name: string;
  sql: string;
}

// Version 1 is the full schema as first released. Audit action/reason codes are
// checked in code (audit.ts), not with CHECK constraints: adding a code to the
// closed set must not need a table rebuild. messages.ts_ms has no index on
// purpose: every index costs a page write per ingested message, while retention
// runs rarely and old rows sit at the start of the seq order anyway.
const V1_SCHEMA = `
CREATE TABLE chats (
  jid TEXT PRIMARY KEY,
  name TEXT,
  channel TEXT NOT NULL,
  last_activity TEXT NOT NULL,
  last_activity_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  chat_jid TEXT NOT NULL REFERENCES chats(jid),
  id TEXT NOT NULL,
  sender TEXT NOT NULL,
  sender_name TEXT NOT NULL,
  text TEXT NOT NULL,
  timestamp TEXT NOT NULL,
  ts_ms INTEGER NOT NULL,
  from_me INTEGER NOT NULL CHECK (from_me IN (0, 1)),
  is_bot_message INTEGER NOT NULL CHECK (is_bot_message IN (0, 1)),
  UNIQUE (chat_jid, id)
) STRICT;
CREATE INDEX messages_chat_input ON messages (chat_jid, is_bot_message, seq);

CREATE TABLE groups (
  jid TEXT PRIMARY KEY,
  folder TEXT NOT NULL UNIQUE CHECK (
    length(folder) BETWEEN 1 AND 64 AND folder GLOB '[a-z0-9]*' AND folder NOT GLOB '*[^a-z0-9-]*'
  ),
  name TEXT NOT NULL,
  trigger TEXT NOT NULL,
  requires_trigger INTEGER NOT NULL CHECK (requires_trigger IN (0, 1)),
  is_main INTEGER NOT NULL CHECK (is_main IN (0, 1)),
  container_config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(container_config)),
  daily_token_budget INTEGER CHECK (daily_token_budget IS NULL OR daily_token_budget >= 0),
  added_at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX groups_one_main ON groups (is_main) WHERE is_main = 1;

CREATE TABLE cursors (
  chat_jid TEXT PRIMARY KEY,
  seq INTEGER NOT NULL CHECK (seq >= 0)
) STRICT;

CREATE TABLE sessions (
  group_folder TEXT PRIMARY KEY,
  session_id TEXT NOT NULL
) STRICT;

CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  group_folder TEXT NOT NULL,
  chat_jid TEXT NOT NULL,
  prompt TEXT NOT NULL,
  schedule_type TEXT NOT NULL CHECK (schedule_type IN ('cron', 'interval', 'once')),
  schedule_value TEXT NOT NULL,
  context_mode TEXT NOT NULL CHECK (context_mode IN ('group', 'isolated')),
  status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'error')),
  next_run_at INTEGER,
  last_run_at INTEGER,
  last_result TEXT,
  created_at TEXT NOT NULL
) STRICT;
CREATE INDEX tasks_due ON tasks (status, next_run_at);
CREATE INDEX tasks_group ON tasks (group_folder);

CREATE TABLE task_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('success', 'error')),
  result TEXT,
  error TEXT
) STRICT;
CREATE INDEX task_runs_task ON task_runs (task_id, id);

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  chat_jid TEXT NOT NULL,
  text TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  group_folder TEXT,
  run_id TEXT,
  action TEXT NOT NULL,
  target TEXT,
  reason TEXT NOT NULL
) STRICT;
CREATE INDEX audit_time ON audit (time_ms);
`;

// Version 2 adds per-request token accounting (SPEC §11).
const V2_USAGE = `
CREATE TABLE usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  day TEXT NOT NULL,
  group_folder TEXT NOT NULL,
  run_id TEXT NOT NULL,
  task_id TEXT,
  input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
  output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
  cache_read_tokens INTEGER NOT NULL CHECK (cache_read_tokens >= 0),
  cache_write_tokens INTEGER NOT NULL CHECK (cache_write_tokens >= 0),
  at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_group_day ON usage (group_folder, day);
CREATE INDEX usage_day ON usage (day);
CREATE INDEX usage_run ON usage (run_id);
`;

// Version 3 aggregates identical refusals (SPEC §10.8): a row stands for `count`
// of them, and the per-run look-up that finds the row to count up is indexed.
const V3_AUDIT_COUNT = `
ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1);
CREATE INDEX audit_run ON audit (run_id, action, reason, target);
`;

// Version 4 keeps one row per agent run for `nanoclaw runs` (start, end, outcome;
// tokens come from the usage table by run_id), and marks which stored messages
// came from the owner. outcome NULL means the run has not ended (or the host
// died during it; the next start marks such rows interrupted).
const V4_RUNS_AND_OWNER = `
CREATE TABLE runs (
  run_id TEXT PRIMARY KEY,
  group_folder TEXT NOT NULL,
  task_id TEXT,
  started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER,
  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('ok', 'error', 'refused', 'interrupted')),
  error TEXT
) STRICT;
CREATE INDEX runs_started ON runs (started_at_ms);
CREATE INDEX runs_group ON runs (group_folder, started_at_ms);
CREATE INDEX runs_open ON runs (started_at_ms) WHERE outcome IS NULL;
ALTER TABLE messages ADD COLUMN from_owner INTEGER NOT NULL DEFAULT 0 CHECK (from_owner IN (0, 1));
`;

// Version 5: the per-group sender allowlist (SPEC §2.5), a JSON array of sender
// ids; NULL means everyone may wake the group.
const V5_ALLOWED_SENDERS = `
ALTER TABLE groups ADD COLUMN allowed_senders TEXT
  CHECK (allowed_senders IS NULL OR (json_valid(allowed_senders) AND json_type(allowed_senders) = 'array'));
`;

// Version 6 keeps what a reply quotes (SPEC §2.7): the quoted message's id, its
// sender and a short excerpt, so the prompt shows it even once the quoted
// message itself has aged out or was never stored.
const V6_REPLY_CONTEXT = `
ALTER TABLE messages ADD COLUMN reply_to_id TEXT;
ALTER TABLE messages ADD COLUMN reply_to_sender TEXT;
ALTER TABLE messages ADD COLUMN reply_to_excerpt TEXT;
`;

// Version 7 records the files a message carries (issue 13): a JSON array of
// {path, type, sizeBytes}, paths relative to the group folder; NULL for none.
const V7_MESSAGE_MEDIA = `
ALTER TABLE messages ADD COLUMN media TEXT
  CHECK (media IS NULL OR (json_valid(media) AND json_type(media) = 'array'));
`;

// Version 8 lets the outbox carry a file (send_file): the host path and its
// type; the text column holds the caption. Sent from disk, so a restart resends it.
const V8_OUTBOX_FILE = `
ALTER TABLE outbox ADD COLUMN file_path TEXT;
ALTER TABLE outbox ADD COLUMN file_type TEXT;
`;

/** All migrations in order; migration i (0-based) brings the schema to version i + 1. */
export const MIGRATIONS: readonly Migration[] = [
  { name: 'initial schema', sql: V1_SCHEMA },
  { name: 'usage table', sql: V2_USAGE },
  { name: 'audit count', sql: V3_AUDIT_COUNT },
  { name: 'runs table, messages.from_owner', sql: V4_RUNS_AND_OWNER },
  { name: 'group sender allowlist', sql: V5_ALLOWED_SENDERS },
  { name: 'reply context', sql: V6_REPLY_CONTEXT },
  { name: 'message media', sql: V7_MESSAGE_MEDIA },
  { name: 'outbox files', sql: V8_OUTBOX_FILE },
];

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the database up to `migrations.length`. Refuses a database newer than
 * the list (StoreVersionError). `dbLabel` names the file in that error.
 * Returns the final version.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[], dbLabel: string): number {
  const knownVersion = migrations.length;
  const initialVersion = schemaVersion(db);
  if (initialVersion > knownVersion) throw new StoreVersionError(dbLabel, initialVersion, knownVersion);

  const step = db.transaction((migration: Migration, targetVersion: number) => {
    // Re-read under the write lock: another process may have migrated meanwhile.
    if (schemaVersion(db) >= targetVersion) return;
    try {
      db.exec(migration.sql);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(`migration ${targetVersion} (${migration.name}) of ${dbLabel} failed: ${why}`, {
        cause: err,
      });
    }
    // user_version is in the database header, so this write commits or rolls back with the step.
    db.pragma(`user_version = ${targetVersion}`);
  });
  for (let version = initialVersion + 1; version <= knownVersion; version++) {
    step.immediate(migrations[version - 1], version);
  }
  return schemaVersion(db);
}
