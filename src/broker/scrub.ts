// Credential scrubbing for everything the broker hands back to a sandbox or a log
// (SPEC §10.1). An upstream may echo what it received (error bodies that quote
// headers, debugging gateways), in the raw form or an encoded one, whole or cut
// short; so any run of at least MIN_PARTIAL_SECRET_CHARS characters of any
// encoding of the credential is replaced. Bodies are scrubbed as a stream: a
// secret split across chunks is held back until it can be judged, never passed.

import type { OutgoingHttpHeaders } from 'node:http';

export const REDACTED = '[redacted]';

/**
 * Shortest piece of an encoded secret that is scrubbed on its own. Long enough
 * that a well-known key prefix (`sk-ant-api03-`, 13 chars) is not itself a hit,
 * short enough that a leaked fragment cannot shorten a brute force to anything useful.
 */
export const MIN_PARTIAL_SECRET_CHARS = 16;

/** Secrets shorter than this would scrub innocent text and cannot be real credentials. */
const MIN_SECRET_CHARS = 4;

export interface StreamScrubber {
  /** Scrubbed bytes that are safe to pass on now; a possible secret at the end is held back. */
  push(chunk: Buffer): Buffer;
  /** Whatever was held back, scrubbed. */
  end(): Buffer;
}

export interface SecretScrubber {
  scrubText(text: string): string;
  /** Header values scrubbed; a header whose name carries a secret is dropped. */
  scrubHeaders(headers: OutgoingHttpHeaders): OutgoingHttpHeaders;
  stream(): StreamScrubber;
}

/** The base64 characters that depend on the secret alone, for each of the three byte alignments. */
function base64Forms(bytes: Buffer): string[] {
  const forms: string[] = [];
  for (let pad = 0; pad < 3; pad++) {
    const encoded = Buffer.concat([Buffer.alloc(pad), bytes])
      .toString('base64')
      .replace(/=+$/, '');
    // Characters whose 6 bits overlap the leading pad, or the zero bits after the end, vary with context.
    const skipStart = Math.ceil((8 * pad) / 6);
    const totalBits = 8 * (pad + bytes.length);
    const end = totalBits % 6 === 0 ? encoded.length : encoded.length - 1;
    const stable = encoded.slice(skipStart, end);
    forms.push(stable, stable.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return forms;
}

/** Every spelling of the secret an echo is likely to use, as latin1 strings of its bytes. */
export function secretForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const raw = bytes.toString('latin1');
  const uri = encodeURIComponent(secret);
  const json = JSON.stringify(secret).slice(1, -1);
  const hex = bytes.toString('hex');
  const forms = [
    raw,
    uri,
    uri.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()),
    json,
    json.replace(/\//g, '\\/'),
    hex,
    hex.toUpperCase(),
    ...base64Forms(bytes),
  ];
  return [...new Set(forms)].filter((form) => form.length > 0);
}

type Match = { length: number } | 'pending' | null;

export function createSecretScrubber(secrets: readonly string[]): SecretScrubber {
  // HTTP lower-cases header names, so a name is checked against lower-cased secrets too.
  const lowered = secrets.map((s) => s.toLowerCase());
  const nameScrubber = lowered.some((s, i) => s !== secrets[i]) ? createSecretScrubber(lowered) : null;
  const forms = [
    ...new Set(secrets.filter((s) => s.length >= MIN_SECRET_CHARS).flatMap((s) => secretForms(s))),
  ];
  const gramChars = Math.min(MIN_PARTIAL_SECRET_CHARS, ...forms.map((f) => f.length));
  // Every gram of every form, with where it occurs: a hit starts with one of them.
  const grams = new Map<string, Array<[form: number, offset: number]>>();
  forms.forEach((form, index) => {
    for (let offset = 0; offset + gramChars <= form.length; offset++) {
      const gram = form.slice(offset, offset + gramChars);
      const places = grams.get(gram);
      if (places) places.push([index, offset]);
      else grams.set(gram, [[index, offset]]);
    }
  });

  /** The longest hit starting at `at`, or 'pending' when more input could still make or lengthen one. */
  const matchAt = (text: string, at: number, final: boolean): Match => {
    if (at + gramChars > text.length) {
      if (final) return null;
      const tail = text.slice(at);
      return forms.some((form) => form.includes(tail)) ? 'pending' : null;
    }
    const places = grams.get(text.slice(at, at + gramChars));
    if (!places) return null;
    let best = 0;
    for (const [index, offset] of places) {
      const form = forms[index];
      let length = gramChars;
      while (
        offset + length < form.length &&
        at + length < text.length &&
        text.charCodeAt(at + length) === form.charCodeAt(offset + length)
      ) {
        length++;
      }
      if (!final && at + length === text.length && offset + length < form.length) return 'pending';
      if (length >= Math.min(MIN_PARTIAL_SECRET_CHARS, form.length)) best = Math.max(best, length);
    }
    return best > 0 ? { length: best } : null;
  };

  /** Scrubs `text`; unless `final`, stops before a possible hit that runs into the end. */
  const scan = (text: string, final: boolean): { out: string; held: string } => {
    if (forms.length === 0) return { out: text, held: '' };
    const parts: string[] = [];
    let copiedTo = 0;
    let at = 0;
    while (at < text.length) {
      const match = matchAt(text, at, final);
      if (match === 'pending') break;
      if (match === null) {
        at++;
        continue;
      }
      parts.push(text.slice(copiedTo, at), REDACTED);
      at += match.length;
      copiedTo = at;
    }
    parts.push(text.slice(copiedTo, at));
    return { out: parts.join(''), held: text.slice(at) };
  };

  const scrubText = (text: string): string => {
    // Work on the UTF-8 bytes as latin1 so every form (built the same way) lines up.
    const latin1 = Buffer.from(text, 'utf8').toString('latin1');
    const { out } = scan(latin1, true);
    return out === latin1 ? text : Buffer.from(out, 'latin1').toString('utf8');
  };

  return {
    scrubText,
    scrubHeaders(headers) {
      const out: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(headers)) {
        const nameLeaks =
          scrubText(name) !== name || (nameScrubber !== null && nameScrubber.scrubText(name) !== name);
        if (value === undefined || nameLeaks) continue;
        if (typeof value === 'string') out[name] = scrubText(value);
        else if (Array.isArray(value)) out[name] = value.map((v) => scrubText(v));
        else out[name] = value;
      }
      return out;
    },
    stream() {
      let held = '';
      return {
        push(chunk) {
          const result = scan(held + chunk.toString('latin1'), false);
          held = result.held;
          return Buffer.from(result.out, 'latin1');
        },
        end() {
          const result = scan(held, true);
          held = '';
          return Buffer.from(result.out, 'latin1');
        },
      };
    },
  };
}
