// The lite engine's session: the whole message history as one JSON file in the
// group's session dir (`~/.claude/lite/<id>.json`), rewritten atomically after
// every step so a killed run resumes from its last complete exchange.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Message } from './messages-api.js';

export interface LiteSession {
  id: string;
  messages: Message[];
  /** Context size of the last reply, in tokens: decides compaction, also at the start of the next run. */
  contextTokens?: number;
}

const SESSION_ID_RE = /^lite-[0-9a-f]{24}$/;

/** A session of the lite engine (a group that switched engines still has one stored). */
export function isLiteSessionId(id: string): boolean {
  return SESSION_ID_RE.test(id);
}

export function sessionDir(homeDir: string): string {
  return path.join(homeDir, '.claude', 'lite');
}

export function newSessionId(): string {
  return `lite-${randomBytes(12).toString('hex')}`;
}

/**
 * The stored session with this id, or undefined when there is none (a
 * claude-code session id after the group switched engines, a removed file).
 */
export function loadSession(homeDir: string, id: string): LiteSession | undefined {
  if (!SESSION_ID_RE.test(id)) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(path.join(sessionDir(homeDir), `${id}.json`), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = JSON.parse(text) as { messages?: unknown; contextTokens?: unknown };
  if (!Array.isArray(parsed.messages)) throw new Error(`session ${id} is damaged: no message list`);
  const session: LiteSession = { id, messages: parsed.messages as Message[] };
  if (typeof parsed.contextTokens === 'number') session.contextTokens = parsed.contextTokens;
  return session;
}

export function saveSession(homeDir: string, session: LiteSession): void {
  const dir = sessionDir(homeDir);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${session.id}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(session));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
