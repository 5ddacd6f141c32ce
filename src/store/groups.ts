// Registered groups (SPEC §1) with their per-group cursor and agent session.
// Conflicts are checked in code first so the error can say which group holds the
// jid or folder; the UNIQUE constraints and the one-main partial index stay as
// the backstop against a racing second process.

import type Database from 'better-sqlite3';
import type { ContainerConfig, Group } from '../core/types.js';
import { validateAllowedSenders } from '../core/validate.js';
import { GroupConflictError, StoreInputError } from './errors.js';
import { flag } from './rows.js';

/** The settings `groups edit` may change; absent fields keep their stored values. */
export interface GroupSettingsUpdate {
  trigger?: string;
  requiresTrigger?: boolean;
  containerConfig?: ContainerConfig;
}

const FOLDER_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;

interface GroupRow {
  jid: string;
  folder: string;
  name: string;
  trigger: string;
  requires_trigger: number;
  is_main: number;
  container_config: string;
  daily_token_budget: number | null;
  allowed_senders: string | null;
  added_at: string;
}

interface GroupParams {
  jid: string;
  folder: string;
  name: string;
  trigger: string;
  requiresTrigger: 0 | 1;
  isMain: 0 | 1;
  containerConfig: string;
  dailyTokenBudget: number | null;
  allowedSenders: string | null;
  addedAt: string;
}

const GROUP_COLUMNS =
  'jid, folder, name, trigger, requires_trigger, is_main, container_config, daily_token_budget, ' +
  'allowed_senders, added_at';

function toGroup(row: GroupRow): Group {
  return {
    jid: row.jid,
    name: row.name,
    folder: row.folder,
    trigger: row.trigger,
    requiresTrigger: row.requires_trigger === 1,
    isMain: row.is_main === 1,
    // Written only by addGroup from a typed ContainerConfig; json_valid() guards the text.
    containerConfig: JSON.parse(row.container_config) as ContainerConfig,
    dailyTokenBudget: row.daily_token_budget,
    // Written only from a validated string[]; the CHECK constraint guards the JSON shape.
    allowedSenders: row.allowed_senders === null ? null : (JSON.parse(row.allowed_senders) as string[]),
    addedAt: row.added_at,
  };
}

/** Validated, de-duplicated JSON for the allowed_senders column; null stays null. */
function allowedSendersJson(senders: readonly string[] | null): string | null {
  if (senders === null) return null;
  const problem = validateAllowedSenders(senders);
  if (problem) throw new StoreInputError(problem);
  return JSON.stringify([...new Set(senders)]);
}

function describe(group: Group): string {
  return `'${group.name}' (folder ${group.folder}, jid ${group.jid})`;
}

export class GroupTables {
  private readonly listStmt: Database.Statement<[], GroupRow>;
  private readonly byJidStmt: Database.Statement<[string], GroupRow>;
  private readonly byFolderStmt: Database.Statement<[string], GroupRow>;
  private readonly mainStmt: Database.Statement<[], GroupRow>;
  private readonly insertStmt: Database.Statement<[GroupParams]>;
  private readonly deleteStmt: Database.Statement<[string]>;
  private readonly moveStmt: Database.Statement<[string, string]>;
  private readonly setBudgetStmt: Database.Statement<[number | null, string]>;
  private readonly setAllowedSendersStmt: Database.Statement<[string | null, string]>;
  private readonly setSettingsStmt: Database.Statement<[string, 0 | 1, string, string]>;
  private readonly getCursorStmt: Database.Statement<[string], { seq: number }>;
  private readonly setCursorStmt: Database.Statement<[string, number]>;
  private readonly deleteCursorStmt: Database.Statement<[string]>;
  private readonly startCursorStmt: Database.Statement<{ jid: string }>;
  private readonly advanceCursorStmt: Database.Statement<[string, number]>;
  private readonly getSessionStmt: Database.Statement<[string], { session_id: string }>;
  private readonly setSessionStmt: Database.Statement<[string, string]>;
  private readonly deleteSessionStmt: Database.Statement<[string]>;
  private readonly addTx: Database.Transaction<(group: Group) => void>;
  private readonly removeTx: Database.Transaction<(jid: string) => boolean>;
  private readonly updateTx: Database.Transaction<(jid: string, update: GroupSettingsUpdate) => Group>;

  constructor(db: Database.Database) {
    this.listStmt = db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups ORDER BY is_main DESC, added_at, folder`);
    this.byJidStmt = db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups WHERE jid = ?`);
    this.byFolderStmt = db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups WHERE folder = ?`);
    this.mainStmt = db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups WHERE is_main = 1`);
    this.insertStmt = db.prepare(`
      INSERT INTO groups (${GROUP_COLUMNS})
      VALUES (@jid, @folder, @name, @trigger, @requiresTrigger, @isMain, @containerConfig,
              @dailyTokenBudget, @allowedSenders, @addedAt)`);
    this.deleteStmt = db.prepare('DELETE FROM groups WHERE jid = ?');
    this.moveStmt = db.prepare('UPDATE groups SET jid = ? WHERE jid = ?');
    this.setBudgetStmt = db.prepare('UPDATE groups SET daily_token_budget = ? WHERE folder = ?');
    this.setAllowedSendersStmt = db.prepare('UPDATE groups SET allowed_senders = ? WHERE jid = ?');
    this.setSettingsStmt = db.prepare(
      'UPDATE groups SET trigger = ?, requires_trigger = ?, container_config = ? WHERE jid = ?',
    );
    this.getCursorStmt = db.prepare('SELECT seq FROM cursors WHERE chat_jid = ?');
    this.setCursorStmt = db.prepare(`
      INSERT INTO cursors (chat_jid, seq) VALUES (?, ?)
      ON CONFLICT (chat_jid) DO UPDATE SET seq = excluded.seq`);
    this.deleteCursorStmt = db.prepare('DELETE FROM cursors WHERE chat_jid = ?');
    // Every stored message counts, the assistant's own replies included: what is
    // in the chat at registration is history, not a question waiting for an answer.
    this.startCursorStmt = db.prepare(`
      INSERT INTO cursors (chat_jid, seq)
      SELECT @jid, COALESCE(MAX(seq), 0) FROM messages WHERE chat_jid = @jid
      ON CONFLICT (chat_jid) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > cursors.seq`);
    // Only forward: a late or repeated commit can never make answered messages pending again.
    this.advanceCursorStmt = db.prepare(`
      INSERT INTO cursors (chat_jid, seq) VALUES (?, ?)
      ON CONFLICT (chat_jid) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > cursors.seq`);
    this.getSessionStmt = db.prepare('SELECT session_id FROM sessions WHERE group_folder = ?');
    this.setSessionStmt = db.prepare(`
      INSERT INTO sessions (group_folder, session_id) VALUES (?, ?)
      ON CONFLICT (group_folder) DO UPDATE SET session_id = excluded.session_id`);
    this.deleteSessionStmt = db.prepare('DELETE FROM sessions WHERE group_folder = ?');
    this.addTx = db.transaction((group: Group) => this.addUnlocked(group));
    this.removeTx = db.transaction((jid: string) => this.removeUnlocked(jid));
    this.updateTx = db.transaction((jid: string, update: GroupSettingsUpdate) =>
      this.updateUnlocked(jid, update),
    );
  }

  listGroups(): Group[] {
    return this.listStmt.all().map(toGroup);
  }

  getGroupByJid(jid: string): Group | undefined {
    const row = this.byJidStmt.get(jid);
    return row && toGroup(row);
  }

  getGroupByFolder(folder: string): Group | undefined {
    const row = this.byFolderStmt.get(folder);
    return row && toGroup(row);
  }

  addGroup(group: Group): void {
    this.addTx.immediate(group);
  }

  private addUnlocked(group: Group): void {
    if (!FOLDER_PATTERN.test(group.folder)) {
      throw new StoreInputError(
        `cannot register '${group.name}': invalid folder '${group.folder}'; use 1-64 characters ` +
          `a-z, 0-9 and '-', starting with a letter or digit, e.g. 'family-chat'`,
      );
    }
    const sameJid = this.getGroupByJid(group.jid);
    if (sameJid) {
      throw new GroupConflictError(
        `cannot register '${group.name}': chat ${group.jid} is already registered as ${describe(sameJid)}`,
      );
    }
    const sameFolder = this.getGroupByFolder(group.folder);
    if (sameFolder) {
      throw new GroupConflictError(
        `cannot register '${group.name}': folder ${group.folder} is already used by ${describe(sameFolder)}`,
      );
    }
    if (group.isMain) {
      const main = this.mainStmt.get();
      if (main) {
        throw new GroupConflictError(
          `cannot register '${group.name}' as main: ${describe(toGroup(main))} is already the main group; ` +
            'unregister it first',
        );
      }
    }
    this.insertStmt.run({
      jid: group.jid,
      folder: group.folder,
      name: group.name,
      trigger: group.trigger,
      requiresTrigger: flag(group.requiresTrigger),
      isMain: flag(group.isMain),
      containerConfig: JSON.stringify(group.containerConfig ?? {}),
      dailyTokenBudget: group.dailyTokenBudget,
      allowedSenders: allowedSendersJson(group.allowedSenders ?? null),
      addedAt: group.addedAt,
    });
    // A re-registered chat still has the messages of its earlier registration
    // (removeGroup keeps them): start after them, or the next wake replays them all.
    this.startCursorStmt.run({ jid: group.jid });
  }

  private removeUnlocked(jid: string): boolean {
    const group = this.getGroupByJid(jid);
    if (!group) return false;
    this.deleteStmt.run(jid);
    this.deleteCursorStmt.run(jid);
    this.deleteSessionStmt.run(group.folder);
    return true;
  }

  removeGroup(jid: string): boolean {
    return this.removeTx.immediate(jid);
  }

  /**
   * Moves a group to another chat id, keeping its folder, session and memory.
   * The new chat's earlier messages are history (as at registration); the old
   * chat's cursor goes with the old id. Call inside a transaction.
   */
  moveGroupChatUnlocked(fromJid: string, toJid: string): boolean {
    const group = this.getGroupByJid(fromJid);
    if (!group) return false;
    const taken = this.getGroupByJid(toJid);
    if (taken) {
      throw new GroupConflictError(`chat ${toJid} is already registered as ${describe(taken)}`);
    }
    this.moveStmt.run(toJid, fromJid);
    this.deleteCursorStmt.run(fromJid);
    this.startCursorStmt.run({ jid: toJid });
    return true;
  }

  setDailyTokenBudget(groupFolder: string, tokens: number | null): void {
    if (tokens !== null && !(Number.isInteger(tokens) && tokens >= 0)) {
      throw new StoreInputError(`daily token budget must be a whole number >= 0 or null, got ${tokens}`);
    }
    if (this.setBudgetStmt.run(tokens, groupFolder).changes === 0) {
      throw new StoreInputError(`no registered group has folder '${groupFolder}'`);
    }
  }

  /** Null lets everyone wake the group; a list lets only those senders (SPEC §2.5). */
  setAllowedSenders(jid: string, senders: readonly string[] | null): void {
    if (this.setAllowedSendersStmt.run(allowedSendersJson(senders), jid).changes === 0) {
      throw new StoreInputError(`no registered group ${jid}; see: nanoclaw groups list`);
    }
  }

  /** Changes only the fields given; the rest keep their stored values. Returns the updated group. */
  updateGroupSettings(jid: string, update: GroupSettingsUpdate): Group {
    return this.updateTx.immediate(jid, update);
  }

  private updateUnlocked(jid: string, update: GroupSettingsUpdate): Group {
    const group = this.getGroupByJid(jid);
    if (!group) throw new StoreInputError(`no registered group ${jid}; see: nanoclaw groups list`);
    const next: Group = {
      ...group,
      trigger: update.trigger ?? group.trigger,
      requiresTrigger: update.requiresTrigger ?? group.requiresTrigger,
      containerConfig: update.containerConfig ?? group.containerConfig,
    };
    this.setSettingsStmt.run(
      next.trigger,
      flag(next.requiresTrigger),
      JSON.stringify(next.containerConfig),
      jid,
    );
    return next;
  }

  getCursor(chatJid: string): number {
    return this.getCursorStmt.get(chatJid)?.seq ?? 0;
  }

  advanceCursor(chatJid: string, seq: number): void {
    this.advanceCursorStmt.run(chatJid, seq);
  }

  setCursor(chatJid: string, seq: number): void {
    this.setCursorStmt.run(chatJid, seq);
  }

  getSession(groupFolder: string): string | undefined {
    return this.getSessionStmt.get(groupFolder)?.session_id;
  }

  setSession(groupFolder: string, sessionId: string): void {
    this.setSessionStmt.run(groupFolder, sessionId);
  }

  clearSession(groupFolder: string): void {
    this.deleteSessionStmt.run(groupFolder);
  }
}
