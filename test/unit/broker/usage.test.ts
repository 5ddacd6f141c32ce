import { describe, expect, it } from 'vitest';
import {
  createRequestSniffer,
  createSseUsageExtractor,
  createUsageExtractor,
  estimateUsage,
  FALLBACK_MAX_OUTPUT_TOKENS,
  MAX_USAGE_PARSE_BYTES,
  usageFromJsonBody,
} from '../../../src/broker/usage.js';

const SSE_TRANSCRIPT = [
  'event: message_start',
  'data: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":25,"cache_read_input_tokens":100,"cache_creation_input_tokens":7,"output_tokens":1}}}',
  '',
  'event: content_block_delta',
  'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"héllo — ünïcode ✓"}}',
  '',
  ': a comment line',
  'event: message_delta',
  'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}',
  '',
  'event: message_stop',
  'data: {"type":"message_stop"}',
  '',
  '',
];

const EXPECTED = { inputTokens: 25, outputTokens: 42, cacheReadTokens: 100, cacheWriteTokens: 7 };

function runSse(chunks: Buffer[]) {
  const extractor = createSseUsageExtractor();
  for (const chunk of chunks) extractor.push(chunk);
  return extractor.finish();
}

describe('SSE usage extraction', () => {
  for (const eol of ['\n', '\r\n', '\r']) {
    it(`gives the same answer at every split point (eol ${JSON.stringify(eol)})`, () => {
      const bytes = Buffer.from(SSE_TRANSCRIPT.join(eol), 'utf8');
      for (let split = 0; split <= bytes.length; split++) {
        expect(runSse([bytes.subarray(0, split), bytes.subarray(split)])).toEqual(EXPECTED);
      }
    });
  }

  it('survives byte-by-byte delivery, including inside multi-byte characters', () => {
    const bytes = Buffer.from(SSE_TRANSCRIPT.join('\r\n'), 'utf8');
    const chunks = [...bytes].map((byte) => Buffer.from([byte]));
    expect(runSse(chunks)).toEqual(EXPECTED);
  });

  it('takes cumulative fields from message_delta when the API reports them there', () => {
    const text =
      'data: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\n' +
      'data: {"type":"message_delta","usage":{"input_tokens":9,"output_tokens":3,"cache_read_input_tokens":2}}\n\n';
    expect(runSse([Buffer.from(text)])).toEqual({
      inputTokens: 9,
      outputTokens: 3,
      cacheReadTokens: 2,
      cacheWriteTokens: 0,
    });
  });

  it('parses a final event that lacks the closing blank line', () => {
    const text = 'data: {"type":"message_delta","usage":{"output_tokens":8}}';
    expect(runSse([Buffer.from(text)])).toEqual({
      inputTokens: 0,
      outputTokens: 8,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });
  });

  it('returns null for a stream without usage and ignores malformed data', () => {
    const text = 'data: {not json "message_start"\n\nevent: ping\ndata: {"type":"ping"}\n\n';
    expect(runSse([Buffer.from(text)])).toBeNull();
  });

  it('drops an overlong line without buffering it, and still reads later events', () => {
    const extractor = createSseUsageExtractor();
    const huge = Buffer.alloc(64 * 1024, 'x');
    extractor.push(Buffer.from('data: "'));
    for (let sent = 0; sent <= MAX_USAGE_PARSE_BYTES; sent += huge.length) extractor.push(huge);
    extractor.push(Buffer.from('"\n\ndata: {"type":"message_delta","usage":{"output_tokens":4}}\n\n'));
    expect(extractor.finish()?.outputTokens).toBe(4);
  });
});

describe('JSON usage extraction', () => {
  it('reads all four counters from a Messages API body', () => {
    const body = JSON.stringify({
      id: 'msg_1',
      content: [{ type: 'text', text: 'hi' }],
      usage: {
        input_tokens: 11,
        output_tokens: 22,
        cache_read_input_tokens: 33,
        cache_creation_input_tokens: 44,
      },
    });
    expect(usageFromJsonBody(body)).toEqual({
      inputTokens: 11,
      outputTokens: 22,
      cacheReadTokens: 33,
      cacheWriteTokens: 44,
    });
  });

  it('has no usage for count_tokens answers, errors and garbage', () => {
    expect(usageFromJsonBody('{"input_tokens":12}')).toBeNull();
    expect(usageFromJsonBody('{"type":"error","error":{"type":"overloaded_error"}}')).toBeNull();
    expect(usageFromJsonBody('not json')).toBeNull();
    expect(usageFromJsonBody('{"usage":{"input_tokens":-3,"output_tokens":"7"}}')).toEqual({
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });
  });

  it('chooses the parser from the content type', () => {
    const json = createUsageExtractor('application/json; charset=utf-8');
    json?.push(Buffer.from('{"usage":{"input_'));
    json?.push(Buffer.from('tokens":3,"output_tokens":4}}'));
    expect(json?.finish()).toEqual({
      inputTokens: 3,
      outputTokens: 4,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });
    expect(createUsageExtractor('text/event-stream')).not.toBeNull();
    expect(createUsageExtractor('text/html')).toBeNull();
    expect(createUsageExtractor(undefined)).toBeNull();
  });
});

describe('request sniffer (estimates for answers cut short)', () => {
  const sniff = (...chunks: string[]): { maxTokens: number | null; bytes: number } => {
    const sniffer = createRequestSniffer();
    for (const chunk of chunks) sniffer.push(Buffer.from(chunk));
    return { maxTokens: sniffer.maxTokens(), bytes: sniffer.bytes() };
  };

  it('finds the top-level max_tokens however the body is split', () => {
    const body = JSON.stringify({
      model: 'm',
      messages: [{ role: 'user', content: 'say "max_tokens": 1 and {"max_tokens":2}' }],
      metadata: { max_tokens: 3 },
      max_tokens: 7_500,
      stream: true,
    });
    for (let cut = 0; cut <= body.length; cut++) {
      expect(sniff(body.slice(0, cut), body.slice(cut))).toEqual({ maxTokens: 7_500, bytes: body.length });
    }
  });

  it('takes the last of duplicate keys, as the upstream does, and refuses to guess odd numbers', () => {
    expect(sniff('{"max_tokens":1,"messages":[],"max_tokens":8000}').maxTokens).toBe(8_000);
    expect(sniff('{"max_tokens":8e3}').maxTokens).toBeNull();
    expect(sniff('{"max_tokens":1.5}').maxTokens).toBeNull();
    expect(sniff('{"messages":[]}').maxTokens).toBeNull();
    expect(sniff('not json').maxTokens).toBeNull();
  });

  it('tells a streamed request from a whole-answer one, only by the top-level key', () => {
    const streaming = (...chunks: string[]): boolean => {
      const sniffer = createRequestSniffer();
      for (const chunk of chunks) sniffer.push(Buffer.from(chunk));
      return sniffer.streaming();
    };
    const body = JSON.stringify({
      messages: [{ role: 'user', content: '"stream": true' }],
      metadata: { stream: true },
      stream: true,
    });
    for (let cut = 0; cut <= body.length; cut++)
      expect(streaming(body.slice(0, cut), body.slice(cut))).toBe(true);
    expect(streaming('{"stream":false}')).toBe(false);
    expect(streaming('{"stream": true, "stream": false}')).toBe(false);
    expect(streaming('{"metadata":{"stream":true},"messages":["\\"stream\\": true"]}')).toBe(false);
    expect(streaming('{"messages":[]}')).toBe(false);
  });

  it('estimates high: what was seen, topped up to max_tokens or the fallback', () => {
    const sniffer = createRequestSniffer();
    sniffer.push(Buffer.from('{"max_tokens":900}'));
    const seen = { inputTokens: 40, outputTokens: 12, cacheReadTokens: 3, cacheWriteTokens: 0 };
    expect(estimateUsage(seen, sniffer)).toEqual({ ...seen, outputTokens: 900 });
    const unknown = createRequestSniffer();
    unknown.push(Buffer.from('x'.repeat(1000)));
    expect(estimateUsage(null, unknown)).toEqual({
      inputTokens: 500,
      outputTokens: FALLBACK_MAX_OUTPUT_TOKENS,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });
  });
});
