import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../src/store/store.js';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exp-'));
const store = openStore(path.join(dir, 'x.db'));
for (let i = 0; i < 20000; i++) {
  store.insertMessage({ chatJid: `c${i % 20}@g.us`, id: `m${i}`, sender: 's', senderName: 'S', text: `message ${i} quick brown fox`, timestamp: new Date(1.74e12 + Math.floor(i/4)*1000).toISOString(), fromMe: false, isBotMessage: i % 10 === 9, chatName: 'c' });
}
store.close(); fs.rmSync(dir, { recursive: true });
