// The owner's egress allowlist, read from the policy directory that no sandbox
// can see (SPEC §10.6). A missing file means no egress for anyone; a broken one
// stops the host with a message naming the file, the place and the problem
// (SPEC §12), rather than silently allowing or denying more than intended.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from '../core/schema.js';
import { compileRule, type EgressEntry, type EgressRules } from './egress-policy.js';

export const EGRESS_ALLOWLIST_FILE = 'egress-allowlist.json';

const entrySchema = z.union([
  z.string().check(z.minLength(1)),
  z.strictObject({
    host: z.string().check(z.minLength(1)),
    ports: z.optional(z.array(z.int().check(z.gte(1), z.lte(65535))).check(z.minLength(1))),
    allowPrivate: z.optional(z.boolean()),
  }),
]);

const fileSchema = z.strictObject({
  default: z.optional(z.array(entrySchema)),
  groups: z.optional(z.record(z.string(), z.array(entrySchema))),
});

export interface EgressAllowlistFile {
  default: EgressEntry[];
  groups: Record<string, EgressEntry[]>;
}

function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

/**
 * Offset of the first JSON syntax error. V8's own messages only sometimes carry a
 * position, and SPEC §12 wants the line, so this small scanner finds it.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string): void => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const string = (): void => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const number = (): void => {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!match || match[0] === '') fail();
    i += (match as RegExpExecArray)[0].length;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    }
    if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    }
    if (ch === '"') return string();
    if (ch === 't') return literal('true');
    if (ch === 'f') return literal('false');
    if (ch === 'n') return literal('null');
    number();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (offset) {
    if (typeof offset === 'number') return Math.min(offset, text.length);
    throw offset;
  }
  return text.length;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path)
    out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  return out === '' ? '(top level)' : out;
}

/** Parses and validates the file's text; `file` is only used in error messages. */
export function parseEgressAllowlist(text: string, file: string): EgressAllowlistFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const where = lineAndColumn(text, jsonErrorOffset(text));
    throw new Error(`${file}: invalid JSON at ${where}: ${(err as Error).message}`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: ${formatPath(issue.path)}: ${issue.message}`);
  }
  const result: EgressAllowlistFile = {
    default: parsed.data.default ?? [],
    groups: parsed.data.groups ?? {},
  };
  // Compile every entry now so a bad host fails at start-up, not at the first request.
  const lists: Array<[string, EgressEntry[]]> = [
    ['default', result.default],
    ...Object.entries(result.groups).map(([folder, list]): [string, EgressEntry[]] => [
      `groups.${folder}`,
      list,
    ]),
  ];
  for (const [name, list] of lists) {
    list.forEach((entry, index) => {
      try {
        compileRule(entry);
      } catch (err) {
        throw new Error(`${file}: ${name}[${index}]: ${(err as Error).message}`);
      }
    });
  }
  return result;
}

/** Reads `egress-allowlist.json` from the policy directory; a missing file is an empty allowlist. */
export function loadEgressAllowlist(configDir: string): EgressAllowlistFile {
  const file = join(configDir, EGRESS_ALLOWLIST_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { default: [], groups: {} };
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  return parseEgressAllowlist(text, file);
}

/** The rules for one group: the default list plus the group's own. Empty ⇒ no egress bridge. */
export function rulesForGroup(file: EgressAllowlistFile, folder: string): EgressRules {
  const groupEntries = Object.prototype.hasOwnProperty.call(file.groups, folder) ? file.groups[folder] : [];
  return [...file.default, ...groupEntries].map(compileRule);
}
