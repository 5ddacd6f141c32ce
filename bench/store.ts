// Ingest throughput of the store: the hot path every inbound message takes
// before routing (SPEC §2.1), measured on a real WAL file, one transaction each.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { InboundMessage } from '../src/core/types.js';
import { openStore } from '../src/store/store.js';
import type { BenchFigure } from './figure.js';

const MESSAGE_COUNT = 20_000;
const CHAT_COUNT = 20;

function buildMessages(): InboundMessage[] {
  const startMs = Date.parse('2025-03-01T00:00:00Z');
  return Array.from({ length: MESSAGE_COUNT }, (_, i) => ({
    chatJid: `chat-${i % CHAT_COUNT}@g.us`,
    id: `bench-${i}`,
    sender: `user-${i % 7}@s.whatsapp.net`,
    senderName: `User ${i % 7}`,
    text: `message ${i}: the quick brown fox jumps over the lazy dog`,
    // Several messages share each second, as in a busy group.
    timestamp: new Date(startMs + Math.floor(i / 4) * 1000).toISOString(),
    fromMe: false,
    isBotMessage: i % 10 === 9,
    chatName: `Chat ${i % CHAT_COUNT}`,
  }));
}

export async function benchStoreInsert(): Promise<BenchFigure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-bench-store-'));
  const store = openStore(path.join(dir, 'store', 'nanoclaw.db'));
  try {
    const messages = buildMessages();
    const startedMs = performance.now();
    let stored = 0;
    for (const message of messages) {
      if (store.insertMessage(message)) stored += 1;
    }
    const elapsedMs = performance.now() - startedMs;
    if (stored !== MESSAGE_COUNT) throw new Error(`bench stored ${stored} of ${MESSAGE_COUNT} messages`);
    return [
      {
        name: 'store_insert_msgs_per_s',
        value: Math.round(MESSAGE_COUNT / (elapsedMs / 1000)),
        unit: 'msgs/s',
      },
    ];
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
