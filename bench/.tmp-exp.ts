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
  const t0 = performance.now();
  for (let i = 0; i < 20000; i++) {
    store.insertMessage({ chatJid: `c${i % 20}@g.us`, id: `m${i}`, sender: 's', senderName: 'S', text: `message ${i} quick brown fox`, timestamp: new Date(1.74e12 + Math.floor(i/4)*1000).toISOString(), fromMe: false, isBotMessage: i % 10 === 9, chatName: 'c' });
  }
  const ms = performance.now() - t0;
  console.log(label, Math.round(20000 / ms * 1000));
  db.close(); fs.rmSync(dir, { recursive: true });
}
for (let k = 0; k < 2; k++) {
run('base', () => {});
run('sync off', (db) => db.pragma('synchronous = OFF'));
run('no ts idx', (db) => db.exec('DROP INDEX messages_ts'));
run('autockpt 10000', (db) => db.pragma('wal_autocheckpoint = 10000'));
run('page 1024', () => {}, (db) => db.pragma('page_size = 1024'));
run('page 1024 + no ts + ckpt', (db) => { db.exec('DROP INDEX messages_ts'); db.pragma('wal_autocheckpoint = 20000'); }, (db) => db.pragma('page_size = 1024'));
run('excl lock', (db) => db.pragma('locking_mode = EXCLUSIVE'));
}
