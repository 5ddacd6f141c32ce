import { describe, expect, it } from 'vitest';
import { formatOutbound, splitMessage, stripInternal } from '../../../src/core/outbound.js';
import { seededRandom } from '../../support/random.js';

const noWhitespace = (s: string): string => s.replace(/\s+/g, '');

function randomText(next: () => number): string {
  const parts: string[] = [];
  const count = 1 + Math.floor(next() * 60);
  for (let i = 0; i < count; i++) {
    const len = 1 + Math.floor(next() * (next() < 0.1 ? 40 : 8));
    let word = '';
    for (let j = 0; j < len; j++) word += 'abcdefghijklmnopqrstuvwxyzäö'[Math.floor(next() * 28)];
    parts.push(word);
    const r = next();
    parts.push(r < 0.1 ? '\n\n' : r < 0.2 ? '\n' : r < 0.25 ? '  ' : ' ');
  }
  return parts.join('').trim();
}

describe('stripInternal', () => {
  it('removes internal blocks, including multi-line ones, and trims', () => {
    expect(stripInternal('Hello <internal>thinking</internal>world')).toBe('Hello world');
    expect(stripInternal('<internal>a\nb\n</internal>\nDone.\n')).toBe('Done.');
    expect(stripInternal('x<internal>1</internal>y<internal>2</internal>z')).toBe('xyz');
  });

  it('is non-greedy: text between two internal blocks survives', () => {
    expect(stripInternal('<internal>a</internal> keep <internal>b</internal>')).toBe('keep');
  });

  it('hides everything after an unclosed internal tag', () => {
    expect(stripInternal('Visible <internal>secret\nstill secret')).toBe('Visible');
    expect(stripInternal('<internal>a</internal>ok<internal>open')).toBe('ok');
  });

  it('leaves text without internal tags alone apart from trimming', () => {
    expect(stripInternal('  plain  ')).toBe('plain');
  });
});

describe('splitMessage', () => {
  it('returns short text as one chunk and nothing for blank text', () => {
    expect(splitMessage('hello', 10)).toEqual(['hello']);
    expect(splitMessage('', 10)).toEqual([]);
    expect(splitMessage('  \n ', 10)).toEqual([]);
  });

  it('prefers paragraph boundaries', () => {
    const text = 'first para line one\nline two\n\nsecond para';
    expect(splitMessage(text, 30)).toEqual(['first para line one\nline two', 'second para']);
  });

  it('falls back to line boundaries', () => {
    expect(splitMessage('line one here\nline two here', 20)).toEqual(['line one here', 'line two here']);
  });

  it('falls back to word boundaries', () => {
    expect(splitMessage('alpha beta gamma delta', 11)).toEqual(['alpha beta', 'gamma delta']);
  });

  it('hard-splits words longer than the limit', () => {
    expect(splitMessage('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
    expect(splitMessage('hi abcdefghij', 4)).toEqual(['hi', 'abcd', 'efgh', 'ij']);
  });

  it('does not cut a surrogate pair in half', () => {
    const chunks = splitMessage('ab😀cd', 3);
    expect(chunks).toEqual(['ab', '😀c', 'd']);
  });

  it('rejects a non-positive limit', () => {
    expect(() => splitMessage('x', 0)).toThrow(RangeError);
  });

  it('property: chunks fit, are non-empty and rejoin to the original text', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = seededRandom(seed);
      const text = randomText(next);
      const maxLength = 5 + Math.floor(next() * 60);
      const chunks = splitMessage(text, maxLength);
      for (const chunk of chunks) {
        expect(chunk.length, `seed ${seed}`).toBeLessThanOrEqual(maxLength);
        expect(chunk.trim().length, `seed ${seed}`).toBeGreaterThan(0);
      }
      // Only whitespace at split points may go; everything else survives, in order.
      expect(noWhitespace(chunks.join('')), `seed ${seed}`).toBe(noWhitespace(text));
      let from = 0;
      for (const chunk of chunks) {
        const at = text.indexOf(chunk, from);
        expect(at, `seed ${seed}: chunk ${JSON.stringify(chunk)} is a verbatim slice`).toBeGreaterThanOrEqual(
          0,
        );
        from = at + chunk.length;
      }
    }
  });
});

describe('formatOutbound', () => {
  const whatsapp = { assistantName: 'Andy', showsBotName: false, maxLength: 4096 };

  it('sends nothing for empty or internal-only text', () => {
    expect(formatOutbound('', whatsapp)).toEqual([]);
    expect(formatOutbound('  <internal>just notes</internal>  ', whatsapp)).toEqual([]);
    expect(formatOutbound('<internal>never closed', whatsapp)).toEqual([]);
  });

  it('prefixes the assistant name when the channel does not show it', () => {
    expect(formatOutbound('Hi <internal>x</internal>there', whatsapp)).toEqual(['Andy: Hi there']);
    expect(formatOutbound('Hi', { ...whatsapp, showsBotName: true })).toEqual(['Hi']);
  });

  it('prefixes every chunk and counts the prefix against the limit', () => {
    const chunks = formatOutbound('alpha beta gamma delta', { ...whatsapp, maxLength: 16 });
    expect(chunks).toEqual(['Andy: alpha beta', 'Andy: gamma', 'Andy: delta']);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(16);
  });

  it('splits on paragraphs with the prefix accounted for', () => {
    const text = `${'a'.repeat(10)}\n\n${'b'.repeat(10)}`;
    expect(formatOutbound(text, { ...whatsapp, maxLength: 16 })).toEqual([
      `Andy: ${'a'.repeat(10)}`,
      `Andy: ${'b'.repeat(10)}`,
    ]);
  });

  it('refuses a limit that leaves no room after the prefix', () => {
    expect(() => formatOutbound('hi', { ...whatsapp, maxLength: 6 })).toThrow(RangeError);
  });
});
