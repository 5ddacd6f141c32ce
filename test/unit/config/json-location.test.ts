import { describe, expect, it } from 'vitest';
import { lineOf, pathKey, scanJson } from '../../../src/config/json-location.js';

describe('scanJson', () => {
  it('agrees with JSON.parse on validity', () => {
    const samples = [
      '{}',
      '[]',
      '{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}',
      ' 42 ',
      '{"a": 1,}',
      '[1,]',
      '{a: 1}',
      '{"a" 1}',
      '01',
      '"tab\tinside"',
      '"bad \\x escape"',
      '{"a": 1} extra',
      '',
      '{"a": nul}',
      '1.',
      '-',
    ];
    for (const text of samples) {
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      expect(scanJson(text).ok, text).toBe(parses);
    }
  });

  it('records where each key is', () => {
    const text = '{\n  "a": {\n    "b": 1\n  }\n}';
    const scan = scanJson(text);
    if (!scan.ok) throw new Error('expected valid JSON');
    expect(lineOf(text, scan.keyOffsets.get(pathKey(['a'])) ?? -1)).toBe(2);
    expect(lineOf(text, scan.keyOffsets.get(pathKey(['a', 'b'])) ?? -1)).toBe(3);
  });
});
