// A fault-injection drill: the real `nanoclaw chat --json` process (real SQLite,
// real sandbox, echo engine) is fed messages and scheduled tasks and killed at
// random moments — SIGKILL at random delays, right after an answer appears,
// during a task, during a graceful shutdown — then restarted, again and again.
// A final clean run answers what is left. The drill then counts, per message
// nonce, how many distinct answers (outbox ids) carry it: exactly one each.
// Seeded, so a failure can be replayed with the seed it prints.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import Database from 'better-sqlite3';
import { CLI, runCli, type CliHome } from './cli.js';
import { seededRandom } from './random.js';

export interface DrillLine {
  chat: string;
  text: string;
  id?: number;
}

export interface DrillOptions {
  home: CliHome;
  seed: number;
  kills: number;
  /**
   * Group folders the drill registers (chats `local:<folder>`, no trigger) and talks to;
   * the first also schedules the tasks. Use names no other test uses: leftover sandboxes
   * are found by them.
   */
  folders: string[];
  /** Every Nth round schedules a one-off task (0: none). */
  taskEvery?: number;
  /** Safety net for one host life, not a behaviour bound. */
  lifeTimeoutMs?: number;
  /** Longest random wait before a kill (the real agent needs longer to reach the model). */
  maxKillDelayMs?: number;
}

export interface DrillReport {
  seed: number;
  kills: number;
  /** Nonces of messages the host stored (accepted) and of tasks it stored. */
  accepted: string[];
  /** Accepted nonces with no answer at all. */
  lost: string[];
  /** Nonces answered by more than one distinct answer (tasks: more answers than stored tasks). */
  duplicated: string[];
  /** Chats whose answers came out of order. */
  outOfOrder: string[];
  integrity: string;
  /** Processes still running that belong to this data dir. */
  orphans: number[];
  lines: DrillLine[];
}

class HostLife {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<void>;
  stderr = '';
  private readonly onLine: Array<() => void> = [];

  constructor(env: NodeJS.ProcessEnv, sink: DrillLine[]) {
    this.child = spawn(process.execPath, [CLI, 'chat', '--json'], { env, cwd: env.NANOCLAW_HOME });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      try {
        sink.push(JSON.parse(line) as DrillLine);
      } catch {
        // A line cut by SIGKILL: it never reached the user whole, the re-send will.
      }
      for (const wake of this.onLine.splice(0)) wake();
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20_000)));
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => this.child.on('close', () => resolve()));
  }

  send(message: object): void {
    if (this.child.stdin.writable) this.child.stdin.write(`${JSON.stringify(message)}\n`);
  }

  nextLine(): Promise<void> {
    return new Promise((resolve) => this.onLine.push(resolve));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const MESSAGE_NONCE = /\bM\d+x\d+\b/g;
const TASK_ANSWER = /^(?:resumed [^\n]*\n)?echo: (T\d+)$/;

export async function runCrashDrill(options: DrillOptions): Promise<DrillReport> {
  const { home, seed, kills, folders } = options;
  const chats = folders.map((folder) => `local:${folder}`);
  for (const folder of folders) {
    const added = await runCli(
      ['groups', 'add', `local:${folder}`, '--name', folder, '--folder', folder, '--no-trigger'],
      home.env,
    );
    if (added.code !== 0) throw new Error(`could not register ${folder}: ${added.stderr}`);
  }
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const lines: DrillLine[] = [];
  let nonce = 0;
  const lifeTimeoutMs = options.lifeTimeoutMs ?? 60_000;
  const maxKillDelayMs = options.maxKillDelayMs ?? 900;

  for (let round = 0; round < kills; round++) {
    const life = new HostLife(home.env, lines);
    const count = 1 + Math.floor(random() * 3);
    for (let i = 0; i < count; i++) {
      const chat = pick(chats);
      const sleepMs = random() < 0.5 ? Math.floor(random() * 150) : 0;
      const directive = sleepMs > 0 ? `\n/sleep ${sleepMs}` : '';
      life.send({ chat, text: `M${round}x${nonce++}${directive}` });
    }
    if (options.taskEvery && round % options.taskEvery === 0) {
      const dueIso = new Date(Date.now() + 300 + Math.floor(random() * 1200)).toISOString();
      const args = JSON.stringify({ prompt: `T${round}`, schedule_type: 'once', schedule_value: dueIso });
      life.send({ chat: chats[0], text: `M${round}x${nonce++}\n/tool schedule_task ${args}` });
    }
    const mode = random();
    const watchdog = setTimeout(() => life.child.kill('SIGKILL'), lifeTimeoutMs);
    if (mode < 0.45) {
      await sleep(Math.floor(random() * maxKillDelayMs));
      life.child.kill('SIGKILL');
    } else if (mode < 0.8) {
      // Around the reply: right after the n-th answer line of this life appears.
      const n = 1 + Math.floor(random() * 2);
      for (let i = 0; i < n; i++) await Promise.race([life.nextLine(), sleep(3000)]);
      life.child.kill('SIGKILL');
    } else {
      // During shutdown: SIGTERM, then maybe SIGKILL before the grace ends.
      await sleep(Math.floor((random() * (maxKillDelayMs * 2)) / 3));
      life.child.kill('SIGTERM');
      if (random() < 0.5) {
        await sleep(Math.floor(random() * 300));
        life.child.kill('SIGKILL');
      }
    }
    await life.exited;
    clearTimeout(watchdog);
  }

  // The last lives: no new input; each recovers, answers what is pending, delivers and exits
  // once no one-off task is left. A re-run message may schedule a task as it is answered; that
  // task is stored and due, and runs in the next life, so go on until none is left.
  const dbPath = path.join(home.dir, 'store', 'nanoclaw.db');
  for (let lastLives = 0; lastLives < 5; lastLives++) {
    const last = new HostLife(home.env, lines);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && activeOnceTasks(dbPath) > 0) await sleep(200);
    last.child.stdin.end();
    const watchdog = setTimeout(() => last.child.kill('SIGKILL'), lifeTimeoutMs);
    await last.exited;
    clearTimeout(watchdog);
    if (activeOnceTasks(dbPath) === 0) break;
  }

  return analyse(home, chats, folders, lines, seed, kills);
}

function activeOnceTasks(dbPath: string): number {
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT COUNT(*) AS n FROM tasks WHERE status = 'active'").get() as {
        n: number;
      };
      return row.n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

function analyse(
  home: CliHome,
  chats: string[],
  folders: string[],
  lines: DrillLine[],
  seed: number,
  kills: number,
): DrillReport {
  const dbPath = path.join(home.dir, 'store', 'nanoclaw.db');
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  let integrity: string;
  const accepted: string[] = [];
  const taskRows = new Map<string, number>();
  try {
    integrity = (db.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check;
    const bodies = db
      .prepare('SELECT text FROM messages WHERE is_bot_message = 0 ORDER BY seq')
      .all() as Array<{
      text: string;
    }>;
    for (const { text } of bodies) accepted.push(...(text.match(MESSAGE_NONCE) ?? []));
    // A turn cut short by a kill is re-run whole, tool calls included, so a task may be
    // scheduled twice (tool side effects are at least once); each stored task must run once.
    const tasks = db.prepare('SELECT prompt FROM tasks').all() as Array<{ prompt: string }>;
    for (const { prompt } of tasks) {
      taskRows.set(prompt, (taskRows.get(prompt) ?? 0) + 1);
      if (taskRows.get(prompt) === 1) accepted.push(prompt);
    }
  } finally {
    db.close();
  }

  // One answer is one outbox id; a re-sent line (crash between send and its confirmation) repeats the id.
  const answers = new Map<number, DrillLine>();
  for (const line of lines) if (line.id !== undefined && !answers.has(line.id)) answers.set(line.id, line);
  const answeredBy = new Map<string, Set<number>>();
  const note = (key: string, id: number): void => {
    const set = answeredBy.get(key) ?? new Set<number>();
    set.add(id);
    answeredBy.set(key, set);
  };
  for (const [id, line] of answers) {
    const task = TASK_ANSWER.exec(line.text);
    if (task) note(task[1], id);
    else for (const key of line.text.match(MESSAGE_NONCE) ?? []) note(key, id);
  }
  const lost = accepted.filter((key) => !answeredBy.has(key));
  const duplicated = accepted.filter((key) => (answeredBy.get(key)?.size ?? 0) > (taskRows.get(key) ?? 1));
  for (const [prompt, rows] of taskRows) {
    if ((answeredBy.get(prompt)?.size ?? 0) < rows && !lost.includes(prompt)) lost.push(prompt);
  }

  // Per chat, answers must follow the order the messages were sent in.
  const outOfOrder: string[] = [];
  for (const chat of chats) {
    let previous = -1;
    for (const line of answers.values()) {
      if (line.chat !== chat) continue;
      for (const key of line.text.match(MESSAGE_NONCE) ?? []) {
        const n = Number(key.split('x')[1]);
        if (n < previous && !outOfOrder.includes(chat)) outOfOrder.push(chat);
        previous = Math.max(previous, n);
      }
    }
  }
  return {
    seed,
    kills,
    accepted,
    lost,
    duplicated,
    outOfOrder,
    integrity,
    orphans: sandboxesOf(folders),
    lines,
  };
}

/**
 * Pids of sandboxes whose run belongs to one of `folders` (bwrap's visible argv
 * carries `NANOCLAW_RUN_ID <folder>-…`): what a dead host would have left.
 */
export function sandboxesOf(folders: string[]): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = argv.indexOf('NANOCLAW_RUN_ID');
      if (at >= 0 && folders.some((folder) => argv[at + 1]?.startsWith(`${folder}-`)))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
