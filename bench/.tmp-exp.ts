import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate, MIGRATIONS } from '../src/store/migrations.js';
import { Store } from '../src/store/store.js';

function run(label: string, setup: (db: Database.Database) => void, pre: (db: Database.Database) => void = () => {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exp-'));
  const db = new Database(path.join(dir, 'x.db'));
  pre(db);
  db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL'); db.pragma('foreign_keys = ON');
  const v = migrate(db, MIGRATIONS, 'x');
  setup(db);
  const store = new Store(db, v);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < 20000; i++) {
    store.insertMessage({ chatJid: `c${i % 20}@g.us`, id: `m${i}`, sender: 's', senderName: 'S', text: `message ${i} quick brown fox`, timestamp: new Date(1.74e12 + Math.floor(i/4)*1000).toISOString(), fromMe: false, isBotMessage: i % 10 === 9, chatName: 'c' });
  }
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  console.log(label.padEnd(30), 'wall', Math.round(20000 / ms * 1000), 'cpu-rate', Math.round(20000 / ((c.user + c.system) / 1000) * 1000), 'user', Math.round(c.user/1000), 'sys', Math.round(c.system/1000));
  db.close(); fs.rmSync(dir, { recursive: true });
}
for (let k = 0; k < 3; k++) {
run('base', () => {});
run('A no ts + ckpt4000', (db) => { db.exec('DROP INDEX messages_ts'); db.pragma('wal_autocheckpoint = 4000'); });
run('A + ckpt 16000', (db) => { db.exec('DROP INDEX messages_ts'); db.pragma('wal_autocheckpoint = 16000'); });
run('B = A + page 1024', (db) => { db.exec('DROP INDEX messages_ts'); db.pragma('wal_autocheckpoint = 16000'); }, (db) => db.pragma('page_size = 1024'));
run('C = A + page 2048', (db) => { db.exec('DROP INDEX messages_ts'); db.pragma('wal_autocheckpoint = 8000'); }, (db) => db.pragma('page_size = 2048'));
}
