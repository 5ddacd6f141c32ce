// Server-sent events, as the Messages API streams them: events split by a blank
// line, `event:` and `data:` fields. Fed byte chunks as they arrive, so a field
// cut across two TCP packets is joined before it is parsed.

import type { IncomingMessage } from 'node:http';

export interface SseEvent {
  event: string;
  data: string;
}

export class SseParser {
  private buffer = '';
  private readonly decoder = new TextDecoder();

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(chunk: Uint8Array): void {
    this.buffer += this.decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end === -1) return;
      const raw = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.dispatch(raw);
    }
  }

  /** Delivers an event left without its closing blank line. */
  end(): void {
    this.buffer += this.decoder.decode();
    if (this.buffer.trim() !== '') this.dispatch(this.buffer);
    this.buffer = '';
  }

  private dispatch(raw: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of raw.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) this.onEvent({ event, data: data.join('\n') });
  }
}

/**
 * Reads a 200 streamed response into a builder: each event is applied as it
 * arrives, and the builder's `finish()` settles the promise at the end. A bad
 * event stops the stream and rejects; so does a broken connection (`onError`
 * names it).
 */
export function readEventStream<T>(
  res: IncomingMessage,
  builder: { apply(event: SseEvent): void; finish(): T },
  settle: { resolve(value: T): void; reject(err: unknown): void; onError(err: Error): unknown },
): void {
  const parser = new SseParser((event) => {
    try {
      builder.apply(event);
    } catch (err) {
      res.destroy();
      settle.reject(err);
    }
  });
  res.on('data', (c: Buffer) => parser.push(c));
  res.on('end', () => {
    parser.end();
    try {
      settle.resolve(builder.finish());
    } catch (err) {
      settle.reject(err);
    }
  });
  res.on('error', (err) => settle.reject(settle.onError(err)));
}
