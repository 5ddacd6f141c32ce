// Shared fixtures for the store tests: every test gets its own database file in
// a fresh temp directory, removed after the test.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { onTestFinished } from 'vitest';
import type { Group, InboundMessage } from '../../../src/core/types.js';
import { openStore, type OpenStoreOptions, type Store } from '../../../src/store/store.js';

export interface TempStore {
  store: Store;
  dir: string;
  dbPath: string;
  /** Closes the current store and opens the same file again. */
  reopen(options?: OpenStoreOptions): Store;
}

function makeDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-store-'));
}

function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A fresh directory, removed when the test finishes. */
export function tempDir(): string {
  const dir = makeDir();
  onTestFinished(() => removeDir(dir));
  return dir;
}

export function tempStore(options?: OpenStoreOptions): TempStore {
  const dir = makeDir();
  const dbPath = path.join(dir, 'store', 'nanoclaw.db');
  const handle: TempStore = {
    store: openStore(dbPath, options),
    dir,
    dbPath,
    reopen(reopenOptions?: OpenStoreOptions): Store {
      handle.store.close();
      handle.store = openStore(dbPath, reopenOptions);
      return handle.store;
    },
  };
  onTestFinished(() => {
    handle.store.close();
    removeDir(dir);
  });
  return handle;
}

export function message(overrides: Partial<InboundMessage> = {}): InboundMessage {
  const id = randomUUID();
  return {
    chatJid: 'family@g.us',
    id,
    sender: 'alice@s.whatsapp.net',
    senderName: 'Alice',
    text: `hello ${id}`,
    timestamp: '2025-03-01T10:00:00.000Z',
    fromMe: false,
    isBotMessage: false,
    ...overrides,
  };
}

export function group(overrides: Partial<Group> = {}): Group {
  return {
    jid: 'family@g.us',
    name: 'Family',
    folder: 'family',
    trigger: '@Andy',
    requiresTrigger: true,
    isMain: false,
    containerConfig: {},
    dailyTokenBudget: null,
    allowedSenders: null,
    addedAt: '2025-03-01T09:00:00.000Z',
    ...overrides,
  };
}
