// Locates things in JSON text for error messages. JSON.parse on Node 20 often
// reports no position at all ("Unexpected token 'x', … is not valid JSON"), and a
// config error must name the line, so this is a small strict JSON scanner that
// reports where the text first goes wrong and where each property key sits.

export type JsonPath = readonly (string | number)[];

export type JsonScan =
  { ok: true; keyOffsets: ReadonlyMap<string, number> } | { ok: false; offset: number; problem: string };

/** Map key for a path; JSON encoding keeps `a.b` and `["a.b"]` distinct. */
export function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map((p) => (typeof p === 'symbol' ? String(p) : p)));
}

export function lineOf(text: string, offset: number): number {
  let line = 1;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

class JsonSyntaxError extends Error {
  constructor(
    readonly offset: number,
    readonly problem: string,
  ) {
    super(problem);
  }
}

/** Scans `text` as RFC 8259 JSON (what JSON.parse accepts). */
export function scanJson(text: string): JsonScan {
  const keyOffsets = new Map<string, number>();
  // Sticky, so it is created per call: its lastIndex is scanning state.
  const numberPattern = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  let pos = 0;

  const found = (at: number): string =>
    at >= text.length ? 'end of file' : `character ${JSON.stringify(text[at])}`;
  const describe = (at: number): string => `unexpected ${found(at)}`;
  const fail = (at: number, problem = describe(at)): never => {
    throw new JsonSyntaxError(at, problem);
  };
  const skipSpace = (): void => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos])) pos++;
  };
  const expect = (ch: string, what: string): void => {
    skipSpace();
    if (text[pos] !== ch) fail(pos, `expected ${what} but found ${found(pos)}`);
    pos++;
  };

  const scanString = (): string => {
    const start = pos;
    pos++; // opening quote
    while (pos < text.length) {
      const code = text.charCodeAt(pos);
      if (code === 0x22) {
        pos++;
        return JSON.parse(text.slice(start, pos)) as string;
      }
      if (code < 0x20) fail(pos, 'control character inside a string (use \\n for a line break)');
      if (code === 0x5c) {
        const esc = text[pos + 1];
        if (esc === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) fail(pos, 'invalid \\u escape');
          pos += 6;
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) {
          pos += 2;
        } else {
          fail(pos, 'invalid escape in a string');
        }
        continue;
      }
      pos++;
    }
    return fail(start, 'unterminated string');
  };

  const scanValue = (path: (string | number)[]): void => {
    skipSpace();
    const ch = text[pos];
    if (ch === '{') {
      pos++;
      skipSpace();
      if (text[pos] === '}') {
        pos++;
        return;
      }
      for (;;) {
        skipSpace();
        if (text[pos] === '}') fail(pos, 'trailing comma before "}"');
        if (text[pos] !== '"') fail(pos, `expected a property name in double quotes but found ${found(pos)}`);
        const keyAt = pos;
        const key = scanString();
        keyOffsets.set(pathKey([...path, key]), keyAt);
        expect(':', '":" after the property name');
        scanValue([...path, key]);
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return;
        }
        fail(pos, `expected "," or "}" but found ${found(pos)}`);
      }
    }
    if (ch === '[') {
      pos++;
      skipSpace();
      if (text[pos] === ']') {
        pos++;
        return;
      }
      for (let index = 0; ; index++) {
        skipSpace();
        if (text[pos] === ']') fail(pos, 'trailing comma before "]"');
        scanValue([...path, index]);
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return;
        }
        fail(pos, `expected "," or "]" but found ${found(pos)}`);
      }
    }
    if (ch === '"') {
      scanString();
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, pos)) {
        pos += literal.length;
        return;
      }
    }
    numberPattern.lastIndex = pos;
    if (numberPattern.test(text)) {
      pos = numberPattern.lastIndex;
      return;
    }
    fail(pos, `expected a value but found ${found(pos)}`);
  };

  try {
    scanValue([]);
    skipSpace();
    if (pos < text.length) fail(pos, `${describe(pos)} after the end of the JSON value`);
    return { ok: true, keyOffsets };
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { ok: false, offset: err.offset, problem: err.problem };
    throw err;
  }
}
