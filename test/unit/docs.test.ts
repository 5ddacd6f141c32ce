// The repository documents itself: every relative link in README.md and docs/
// reaches a file of the repository (and a heading there, when it names one),
// and the configuration reference lists every knob with its real default and
// every environment variable the config loader reads.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultKnobs } from '../../src/config/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCS = [
  'README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
/** Present in a checkout after a build, but not part of the repository. */
const NOT_IN_REPO = ['node_modules', 'dist'];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const match of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    anchors.add(
      match[1]
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return anchors;
}

function linksOf(markdown: string): string[] {
  // Code spans and blocks are examples, not links.
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
}

describe('documentation links', () => {
  it('finds the documents and links in them', () => {
    expect(DOCS).toEqual(
      expect.arrayContaining([
        'docs/ARCHITECTURE.md',
        'docs/BEHAVIOUR.md',
        'docs/CONFIGURATION.md',
        'docs/OPERATIONS.md',
      ]),
    );
    expect(linksOf(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'))).toContain('docs/OPERATIONS.md');
  });

  it.each(DOCS)('every relative link in %s points to a file of the repository', (doc) => {
    const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
    const broken: string[] = [];
    for (const link of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
      const [target, anchor] = link.split('#');
      const file =
        target === '' ? path.join(ROOT, doc) : path.resolve(path.dirname(path.join(ROOT, doc)), target);
      const rel = path.relative(ROOT, file);
      if (rel.startsWith('..') || NOT_IN_REPO.includes(rel.split(path.sep)[0]) || !fs.existsSync(file)) {
        broken.push(`${link} (no such file in the repository)`);
        continue;
      }
      if (
        anchor !== undefined &&
        file.endsWith('.md') &&
        !anchorsOf(fs.readFileSync(file, 'utf8')).has(anchor)
      ) {
        broken.push(`${link} (no heading "#${anchor}" in ${rel})`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('docs/CONFIGURATION.md', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'CONFIGURATION.md'), 'utf8');
  const rowOf = (name: string): string | undefined =>
    doc.split('\n').find((line) => line.startsWith(`| \`${name}\``));

  it('has a row for every config.json knob, showing its real default', () => {
    const knobs = defaultKnobs();
    const problems: string[] = [];
    const check = (name: string, value: unknown): void => {
      const row = rowOf(name);
      if (row === undefined) problems.push(`${name}: missing`);
      else if (!row.includes(`\`${JSON.stringify(value)}\``))
        problems.push(`${name}: default ${JSON.stringify(value)} not shown`);
    };
    for (const [name, value] of Object.entries(knobs)) {
      if (name === 'timeZone') expect(rowOf(name)).toContain('the system zone');
      else if (name === 'sandboxLimits') expect(rowOf(name)).toBeDefined();
      else check(name, value);
    }
    for (const [name, value] of Object.entries(knobs.sandboxLimits)) check(name, value);
    expect(problems).toEqual([]);
  });

  it('documents every environment variable the config loader reads', () => {
    const source = fs.readFileSync(path.join(ROOT, 'src', 'config', 'config.ts'), 'utf8');
    const names = new Set(
      [
        ...source.matchAll(/env(?:Value|Choice)\(\s*env,\s*'([A-Z][A-Z0-9_]*)'|key: '([A-Z][A-Z0-9_]*)'/g),
      ].map((m) => m[1] ?? m[2]),
    );
    // The scan must see the loader's variables, or it proves nothing.
    expect([...names]).toEqual(
      expect.arrayContaining(['NANOCLAW_HOME', 'NANOCLAW_SANDBOX', 'ANTHROPIC_API_KEY']),
    );
    expect([...names].filter((name) => rowOf(name) === undefined)).toEqual([]);
  });
});
