// Compaction for the lite engine: when a request's context nears the configured
// fraction of the model's window, the turns before the current one are
// archived as Markdown to the group's conversations/ folder, summarised by the
// model, and replaced by that summary at the head of the current turn.

import path from 'node:path';
import { ARCHIVE_DIR, archiveSlug, localDay, renderMarkdown, writeArchive, type Turn } from '../archive.js';
import {
  contentBlocks,
  type Message,
  type MessagesRequest,
  type TextBlock,
  type Usage,
} from './messages-api.js';

export interface CompactionPolicy {
  windowTokens: number;
  atFraction: number;
}

/** Opens the summary block that replaces the earlier turns; the archive and the model both recognise it. */
export const SUMMARY_OPEN = '<summary_of_earlier_conversation>';
const SUMMARY_CLOSE = '</summary_of_earlier_conversation>';
const SUMMARY_MAX_TOKENS = 4096;

export const SUMMARY_INSTRUCTION =
  'Summarise the conversation so far for your own later use: the facts, decisions, names, dates, files ' +
  'you created or changed, tasks you scheduled, and anything still open. Plain text, at most 600 words; ' +
  'do not call any tool.';

/** Tokens the model had in view for a reply: the whole prompt (cached or not) and the answer. */
export function contextTokens(usage: Usage): number {
  return (
    usage.input_tokens +
    (usage.cache_creation_input_tokens ?? 0) +
    (usage.cache_read_input_tokens ?? 0) +
    usage.output_tokens
  );
}

export function shouldCompact(tokens: number | undefined, policy: CompactionPolicy | undefined): boolean {
  return policy !== undefined && tokens !== undefined && tokens >= policy.windowTokens * policy.atFraction;
}

/** The text turns of a lite history for the archive; each tool call is one line, results are left out. */
export function historyTurns(messages: readonly Message[]): Turn[] {
  const turns: Turn[] = [];
  for (const message of messages) {
    const parts: string[] = [];
    for (const block of contentBlocks(message)) {
      if (block.type === 'text' && typeof block.text === 'string' && block.text.trim() !== '') {
        parts.push(
          block.text.startsWith(SUMMARY_OPEN)
            ? `_(summary of the earlier conversation)_\n\n${block.text.slice(SUMMARY_OPEN.length).replace(SUMMARY_CLOSE, '').trim()}`
            : block.text,
        );
      } else if (block.type === 'tool_use') {
        parts.push(`_(used tool ${typeof block.name === 'string' ? block.name : 'unknown'})_`);
      }
    }
    if (parts.length > 0) turns.push({ role: message.role, text: parts.join('\n\n') });
  }
  return turns;
}

/** Writes the earlier turns to conversations/<day>-<slug>.md; returns the file, or null when there is no text. */
export function archiveHistory(groupDir: string, messages: readonly Message[], at: Date): string | null {
  const turns = historyTurns(messages);
  if (turns.length === 0) return null;
  const firstUser = turns.find((t) => t.role === 'user');
  const base = `${localDay(at)}-${archiveSlug(firstUser?.text ?? '')}`;
  return writeArchive(path.join(groupDir, ARCHIVE_DIR), base, renderMarkdown(turns, at, 'auto'));
}

/**
 * The request that asks for the summary: the same system prompt, tools and
 * history (so the cached prefix is reused), then the instruction.
 */
export function summaryRequest(base: MessagesRequest, older: Message[]): MessagesRequest {
  return {
    ...base,
    max_tokens: SUMMARY_MAX_TOKENS,
    messages: [...older, { role: 'user', content: [{ type: 'text', text: SUMMARY_INSTRUCTION }] }],
  };
}

/** The current turn's messages with the summary put in front of its prompt. */
export function withSummary(summary: string, current: Message[]): Message[] {
  const [first, ...rest] = current;
  const block: TextBlock = { type: 'text', text: `${SUMMARY_OPEN}\n${summary.trim()}\n${SUMMARY_CLOSE}` };
  return [{ role: first.role, content: [block, ...contentBlocks(first)] }, ...rest];
}
