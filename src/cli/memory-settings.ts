// V8 settings the host process applies to itself at start, before its bundle loads.
// V8 shrinks an idle heap (smaller young generation, compaction) 8 s after its last
// full collection; a host is idle most of its life, so it should settle within a
// second of start-up instead. Runtime-settable, so it stays out of the bin's first
// line, which Linux before 5.1 cuts at 127 characters.

import v8 from 'node:v8';

const MEMORY_REDUCER_DELAY_MS = 500;

export function settleHeapWhenIdle(): void {
  v8.setFlagsFromString(`--gc-memory-reducer-start-delay-ms=${MEMORY_REDUCER_DELAY_MS}`);
}
