// The group's shared memory as both engines read it. Its own module so the lite
// engine does not import the claude-code engine (and with it zod and the MCP tools).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { StartLine } from '../src/core/protocol.js';

/** A memory file's text, trimmed; undefined when it is missing, unreadable or blank. */
export function readMemory(file: string): string | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}

/** Shared memory for non-main groups: global/CLAUDE.md appended to the system prompt. */
export function globalMemory(start: StartLine): string | undefined {
  return start.group.isMain ? undefined : readMemory(path.join(start.paths.globalDir, 'CLAUDE.md'));
}
