// Conversation archive: before Claude Code compacts a session (its PreCompact
// hook), the transcript so far is written as Markdown to the group's
// `conversations/` folder, so the details a summary drops stay readable by the
// agent and the owner. Text turns are kept; tool traffic becomes one line per
// call. The hook never throws: a failed archive is logged and compaction goes on.

import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { HookCallbackMatcher, HookInput } from '@anthropic-ai/claude-agent-sdk';

/** The folder under the group directory; the starter CLAUDE.md points the agent here. */
export const ARCHIVE_DIR = 'conversations';
const SLUG_MAX_CHARS = 40;
/** Past this many name clashes on one day something is wrong; give up rather than loop. */
const MAX_SAME_NAME = 1000;

export interface Turn {
  role: 'user' | 'assistant';
  text: string;
}

type Block = { type?: unknown; text?: unknown; name?: unknown };

function blocksOf(content: unknown): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content)
    ? (content.filter((b) => typeof b === 'object' && b !== null) as Block[])
    : [];
}

/** Claude Code's own bookkeeping in the user role: slash commands and their output. */
function isCommandNoise(text: string): boolean {
  return /^\s*<(command-name|command-message|command-args|local-command-stdout|local-command-stderr)>/.test(
    text,
  );
}

/**
 * The user and assistant text turns of a Claude Code transcript (JSONL). Tool
 * results are dropped, each tool call is one line, malformed lines are skipped:
 * an archive with a gap beats none.
 */
export function transcriptTurns(jsonl: string): Turn[] {
  const turns: Turn[] = [];
  for (const line of jsonl.split('\n')) {
    if (line.trim() === '') continue;
    let entry: {
      type?: unknown;
      isMeta?: unknown;
      isCompactSummary?: unknown;
      message?: { content?: unknown };
    };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if ((entry.type !== 'user' && entry.type !== 'assistant') || entry.isMeta === true) continue;
    const parts: string[] = [];
    for (const block of blocksOf(entry.message?.content)) {
      if (block.type === 'text' && typeof block.text === 'string' && block.text.trim() !== '') {
        if (entry.type === 'user' && isCommandNoise(block.text)) continue;
        parts.push(
          entry.isCompactSummary === true
            ? `_(summary of the earlier conversation)_\n\n${block.text}`
            : block.text,
        );
      } else if (block.type === 'tool_use') {
        parts.push(`_(used tool ${typeof block.name === 'string' ? block.name : 'unknown'})_`);
      }
    }
    if (parts.length > 0) turns.push({ role: entry.type, text: parts.join('\n\n') });
  }
  return turns;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The host's `<messages>` prompt as readable lines; any other text as it is. */
export function readablePrompt(text: string): string {
  const messages = [...text.matchAll(/<message\b([^>]*)>([\s\S]*?)<\/message>/g)];
  if (messages.length === 0) return text.trim();
  return messages
    .map(([, attrs, body]) => {
      const sender = /sender="([^"]*)"/.exec(attrs)?.[1];
      const time = /time="([^"]*)"/.exec(attrs)?.[1];
      const who = sender ? `**${decodeEntities(sender)}**${time ? ` (${decodeEntities(time)})` : ''}: ` : '';
      return `${who}${decodeEntities(body.replace(/<[^>]+>/g, '')).trim()}`;
    })
    .join('\n\n');
}

/** The words of a prompt without the host's sender and time markup. */
function plainWords(text: string): string {
  return readablePrompt(text).replace(/\*\*[^*]*\*\*( \([^)]*\))?: /g, '');
}

/** `a-z0-9-`, at most 40 characters, from the first words of a text; `conversation` when none. */
export function archiveSlug(text: string): string {
  const slug = plainWords(text)
    .normalize('NFKD')
    .replace(/\p{M}/gu, '') // accents off, so `Ünï` keeps its letters as `uni`
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, SLUG_MAX_CHARS)
    .replace(/-+$/, '');
  return slug === '' ? 'conversation' : slug;
}

/** The local calendar day (the runner's TZ), e.g. `2026-11-30`. */
export function localDay(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

export function renderMarkdown(turns: readonly Turn[], at: Date, trigger: 'manual' | 'auto'): string {
  const firstUser = turns.find((t) => t.role === 'user');
  const title =
    (firstUser ? plainWords(firstUser.text).trim().split('\n')[0].slice(0, 80) : '') || 'Conversation';
  const lines = [
    `# ${title}`,
    '',
    `_Archived ${at.toISOString()} before ${trigger === 'auto' ? 'an automatic' : 'a manual'} compaction._`,
    '',
  ];
  for (const turn of turns) {
    lines.push(turn.role === 'user' ? '## User' : '## Assistant', '');
    lines.push(turn.role === 'user' ? readablePrompt(turn.text) : turn.text.trim(), '');
  }
  return lines.join('\n');
}

/**
 * Temp files of an earlier runner that died mid-write. Only one run per group
 * is live at a time, so any temp file found here is such a leftover.
 */
function removeLeftoverTemps(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.') && name.endsWith('.tmp')) rmSync(path.join(dir, name), { force: true });
  }
}

/** Makes the new directory entry durable too, not only the file's bytes. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `<dir>/<day>-<slug>.md` atomically and never over an existing file: the
 * text is fsynced in a temp file, then hard-linked to the first free name
 * (`-2`, `-3`, … on a clash; link fails rather than replaces). Returns the path.
 */
export function writeArchive(dir: string, baseName: string, text: string): string {
  mkdirSync(dir, { recursive: true });
  removeLeftoverTemps(dir);
  const tmp = path.join(dir, `.${baseName}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let n = 1; n <= MAX_SAME_NAME; n++) {
      const target = path.join(dir, `${baseName}${n === 1 ? '' : `-${n}`}.md`);
      try {
        linkSync(tmp, target);
        fsyncDir(dir);
        return target;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    throw new Error(`${MAX_SAME_NAME} archives named ${baseName} already exist in ${dir}`);
  } finally {
    unlinkSync(tmp);
  }
}

export interface ArchiveHookDeps {
  groupDir: string;
  log: (level: 'info' | 'warn', msg: string) => void;
  now: () => Date;
}

/** Archives the transcript named in the hook input; returns the file written, or null. */
export function archiveTranscript(input: HookInput, deps: ArchiveHookDeps): string | null {
  if (input.hook_event_name !== 'PreCompact') return null;
  const turns = transcriptTurns(readFileSync(input.transcript_path, 'utf8'));
  if (turns.length === 0) return null;
  const at = deps.now();
  const firstUser = turns.find((t) => t.role === 'user');
  const base = `${localDay(at)}-${archiveSlug(firstUser?.text ?? '')}`;
  return writeArchive(path.join(deps.groupDir, ARCHIVE_DIR), base, renderMarkdown(turns, at, input.trigger));
}

/** The `hooks` option of the Agent SDK: PreCompact writes the archive, failures only log. */
export function archiveHooks(deps: ArchiveHookDeps): { PreCompact: HookCallbackMatcher[] } {
  return {
    PreCompact: [
      {
        hooks: [
          async (input) => {
            try {
              const file = archiveTranscript(input, deps);
              if (file) deps.log('info', `archived the conversation before compaction: ${file}`);
            } catch (err) {
              const why = err instanceof Error ? err.message : String(err);
              deps.log('warn', `could not archive the conversation before compaction: ${why}`);
            }
            return { continue: true };
          },
        ],
      },
    ],
  };
}
