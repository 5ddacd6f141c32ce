import { describe, expect, it } from 'vitest';
import {
  createSecretScrubber,
  MIN_PARTIAL_SECRET_CHARS,
  REDACTED,
  secretForms,
} from '../../../src/broker/scrub.js';

const KEY = 'sk-ant-api03-Zq8/x+Y2_kLmN0pQrStUvWxYz0123456789abcdefGHIJ-AA';

/** A deterministic pseudo-random sequence (tests must not depend on luck). */
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function streamed(scrubber: ReturnType<typeof createSecretScrubber>, text: string, cuts: number[]): string {
  const bytes = Buffer.from(text, 'utf8');
  const stream = scrubber.stream();
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(stream.push(bytes.subarray(from, cut)));
    from = cut;
  }
  out.push(stream.end());
  return Buffer.concat(out).toString('utf8');
}

describe('secret scrubbing', () => {
  const scrubber = createSecretScrubber([KEY]);
  const b64 = (text: string): string => Buffer.from(text).toString('base64');

  it.each([
    ['raw', KEY],
    ['base64, aligned', b64(KEY)],
    ['base64, one byte in', b64(`:${KEY}`)],
    ['base64, two bytes in', b64(`ab${KEY}`)],
    ['base64url', b64(`user:${KEY}`).replace(/\+/g, '-').replace(/\//g, '_')],
    ['URL-encoded', encodeURIComponent(KEY)],
    ['URL-encoded, lower-case hex', encodeURIComponent(KEY).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())],
    ['JSON-escaped with \\/', JSON.stringify(KEY).replace(/\//g, '\\/')],
    ['hex', Buffer.from(KEY).toString('hex')],
    ['a truncated prefix', KEY.slice(0, 22)],
    ['a piece from the middle', KEY.slice(20, 40)],
  ])('scrubs the key written %s', (_name, form) => {
    const text = `before «${form}» after`;
    const out = scrubber.scrubText(text);
    expect(out).toContain(REDACTED);
    expect(out.startsWith('before «')).toBe(true);
    expect(out.endsWith('» after')).toBe(true);
    for (let i = 0; i + MIN_PARTIAL_SECRET_CHARS <= KEY.length; i++) {
      expect(out).not.toContain(KEY.slice(i, i + MIN_PARTIAL_SECRET_CHARS));
    }
  });

  it('leaves innocent text alone, including the well-known key prefix and short pieces', () => {
    const text = `keys look like sk-ant-api03-…; ${KEY.slice(0, MIN_PARTIAL_SECRET_CHARS - 1)} is too short to matter; ünïcödé`;
    expect(scrubber.scrubText(text)).toBe(text);
    expect(createSecretScrubber(['', 'abc']).scrubText('abc abc')).toBe('abc abc');
  });

  it('covers every spelling in secretForms', () => {
    for (const form of secretForms(KEY)) {
      expect(scrubber.scrubText(`<${Buffer.from(form, 'latin1').toString('utf8')}>`)).toBe(`<${REDACTED}>`);
    }
  });

  it('gives the same result however a stream is cut, holding back only what could start a secret', () => {
    const text =
      `data: {"text":"ünï ${KEY} and ${b64(`x-api-key: ${KEY}`)} and ${encodeURIComponent(KEY)}"}\n\n` +
      `data: {"text":"plain words, then ${KEY.slice(0, 30)}"}\n\n`;
    const whole = scrubber.scrubText(text);
    expect(whole).not.toContain(KEY.slice(0, MIN_PARTIAL_SECRET_CHARS));
    const bytes = Buffer.byteLength(text);
    for (let cut = 0; cut <= bytes; cut++) expect(streamed(scrubber, text, [cut])).toBe(whole);
    const random = lcg(42);
    for (let round = 0; round < 200; round++) {
      const cuts = Array.from({ length: 1 + Math.floor(random() * 12) }, () =>
        Math.floor(random() * bytes),
      ).sort((a, b) => a - b);
      expect(streamed(scrubber, text, cuts)).toBe(whole);
    }
  });

  it('passes chunks that end in a line break on at once', () => {
    const stream = scrubber.stream();
    const event = 'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n';
    expect(stream.push(Buffer.from(event)).toString()).toBe(event);
    expect(stream.end().length).toBe(0);
  });
});
