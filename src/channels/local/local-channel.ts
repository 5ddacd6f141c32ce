// The local channel: talk to the assistant from a terminal, or script it with
// JSON lines (`nanoclaw chat --json`). Chat ids are `local:<name>`; a line with
// no chat (or `local:main`) goes to the main group, whatever its chat id: the
// terminal is the owner's console into main. Several consoles may be attached
// (the chat command's own terminal, and terminals attached over the control
// socket); each gets every message for the local chats and main. In JSON mode every input line is one object
// `{"text", "sender"?, "chat"?, "id"?, "replyTo"?}` (`id` names the message so a
// later line can quote it with `replyTo`; the host looks the quoted message up
// in the store; ids are unique per chat, a repeated one counts as a redelivery
// and is stored once) and every outbound message is printed as one
// line `{"chat","text","id"}` — a stable scripting interface. `id` is the
// outbox id: a line repeated after a crash carries the same id. A line may
// carry files, `"attachments": [{"path", "type"?}]` (then `text` may be left
// out; the host copies them into the group's media folder); a file the agent
// sends is printed as `{"chat","file","caption"?,"id"}`.

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Channel, ChannelEvents } from '../../core/channel.js';
import { kindOfType, typeForFileName } from '../../core/media.js';
import type { InboundAttachment, OutboundFile } from '../../core/types.js';

export const LOCAL_MAIN_JID = 'local:main';

/** One terminal (this process's, or one attached over the control socket). */
export interface ConsoleIo {
  input: Readable;
  output: Writable;
  /** Where input errors are reported (stderr). */
  errors: Writable;
  json: boolean;
  /** Called once when this console's input ends (end of file, or `/exit`). */
  onInputEnd: () => void;
  /** Where relative attachment paths start; defaults to the host's working directory. */
  cwd?: string;
}

export interface LocalChannelOptions {
  assistantName: string;
  events: ChannelEvents;
  /** Other local chats must be registered groups. */
  isRegistered: (jid: string) => boolean;
  now: () => number;
  /**
   * The main group's chat id, whatever channel it lives on: a console line
   * without a chat goes there, so the terminal is the owner's console into main
   * (`local:main` before WhatsApp is linked, the self-chat after). Null: none yet.
   */
  mainJid?: () => string | null;
  /**
   * True when no other channel of this host carries main's chat (`nanoclaw chat`
   * on its own): the consoles then deliver main's answers. Otherwise main's
   * owner channel delivers them and consoles get a copy through `mirror`.
   */
  ownsMainChat?: boolean;
  /** A console attached at connect (the terminal of `nanoclaw chat`). */
  console?: ConsoleIo;
}

interface ParsedInput {
  text: string;
  sender: string;
  chat: string;
  id?: string;
  replyTo?: string;
  attachments?: InboundAttachment[];
}

interface AttachedConsole {
  io: ConsoleIo;
  lines: readline.Interface;
}

export class LocalChannel implements Channel {
  readonly name = 'local';
  readonly showsBotName = true;
  readonly maxMessageLength = 64_000;
  private readonly options: LocalChannelOptions;
  private open = false;
  private readonly consoles = new Set<AttachedConsole>();
  private counter = 0;

  constructor(options: LocalChannelOptions) {
    this.options = options;
  }

  private mainJid(): string | null {
    return this.options.mainJid ? this.options.mainJid() : LOCAL_MAIN_JID;
  }

  ownsJid(jid: string): boolean {
    return jid.startsWith('local:') || (this.options.ownsMainChat === true && jid === this.mainJid());
  }

  /** Connected while a console is attached: local chats' answers wait in the outbox for one. */
  isConnected(): boolean {
    return this.open && this.consoles.size > 0;
  }

  async connect(): Promise<void> {
    this.open = true;
    if (this.options.console) this.attach(this.options.console);
  }

  async disconnect(): Promise<void> {
    this.open = false;
    for (const console of [...this.consoles]) this.detach(console);
  }

  /** Adds a console; returns its detach function (idempotent). */
  attach(io: ConsoleIo): () => void {
    const lines = readline.createInterface({ input: io.input, crlfDelay: Infinity });
    const console: AttachedConsole = { io, lines };
    this.consoles.add(console);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      io.onInputEnd();
    };
    lines.on('line', (line) => {
      if (ended) return;
      // `/exit` ends a human conversation the way Ctrl-D does; JSON input ends at end of file.
      if (!io.json && line.trim() === '/exit') {
        lines.close();
        return;
      }
      this.onLine(io, line);
    });
    lines.on('close', end);
    this.options.events.onConnectionChange(true);
    return () => this.detach(console);
  }

  private detach(console: AttachedConsole): void {
    if (!this.consoles.delete(console)) return;
    console.lines.removeAllListeners('line');
    console.lines.close();
  }

  async sendMessage(jid: string, text: string, delivery?: { outboxId: number }): Promise<void> {
    if (!this.isConnected()) throw new Error('no terminal is attached');
    await Promise.all([...this.consoles].map((c) => this.write(c.io, jid, text, delivery)));
  }

  async sendFile(
    jid: string,
    file: OutboundFile & { caption: string },
    delivery?: { outboxId: number },
  ): Promise<void> {
    if (!this.isConnected()) throw new Error('no terminal is attached');
    // Read now, as a transport would: a file gone from disk fails the send (the outbox retries).
    fs.accessSync(file.path, fs.constants.R_OK);
    const fields: Record<string, string> = { file: file.path };
    if (file.caption !== '') fields.caption = file.caption;
    const plain = ` sent a file: ${file.path}${file.caption === '' ? '' : ` (${file.caption})`}`;
    await Promise.all([...this.consoles].map((c) => this.emit(c.io, jid, fields, plain, delivery)));
  }

  /** A copy of what another channel delivered to main's chat, for the attached consoles (best effort). */
  mirror(jid: string, text: string, delivery?: { outboxId: number }): void {
    if (jid !== this.mainJid() || this.ownsJid(jid)) return;
    for (const c of this.consoles) void this.write(c.io, jid, text, delivery).catch(() => undefined);
  }

  private write(io: ConsoleIo, jid: string, text: string, delivery?: { outboxId: number }): Promise<void> {
    return this.emit(io, jid, { text }, `: ${text}`, delivery);
  }

  /**
   * One delivery line to one console: `{chat, ...fields, id?}` in JSON mode, else the
   * assistant's name followed by `plain`, prefixed with the chat when it is not main's.
   */
  private emit(
    io: ConsoleIo,
    jid: string,
    fields: Record<string, string>,
    plain: string,
    delivery?: { outboxId: number },
  ): Promise<void> {
    const line = io.json
      ? JSON.stringify({ chat: jid, ...fields, ...(delivery ? { id: delivery.outboxId } : {}) }) + '\n'
      : `${jid === this.mainJid() ? '' : `[${jid}] `}${this.options.assistantName}${plain}\n`;
    return new Promise<void>((resolve, reject) =>
      io.output.write(line, (err) => (err ? reject(err) : resolve())),
    );
  }

  private onLine(io: ConsoleIo, raw: string): void {
    if (raw.trim() === '') return;
    const main = this.mainJid();
    const parsed = io.json ? this.parseJson(io, raw, main) : this.parsePlain(io, raw, main);
    if (!parsed) return;
    const timestamp = new Date(this.options.now()).toISOString();
    this.options.events.onChatMetadata({ jid: parsed.chat, timestamp });
    this.options.events.onMessage({
      chatJid: parsed.chat,
      id: parsed.id ?? `local-${this.options.now()}-${++this.counter}`,
      sender: `local:${parsed.sender}`,
      senderName: parsed.sender,
      text: parsed.text,
      timestamp,
      fromMe: false,
      isBotMessage: false,
      // The main chat from a terminal is the owner's own console; other local chats play other people.
      fromOwner: parsed.chat === main,
      ...(parsed.replyTo ? { replyTo: { id: parsed.replyTo } } : {}),
      ...(parsed.attachments ? { attachments: parsed.attachments } : {}),
    });
  }

  private parsePlain(io: ConsoleIo, text: string, main: string | null): ParsedInput | null {
    if (main === null) return this.reject(io, NO_MAIN);
    return { text, sender: 'you', chat: main };
  }

  private parseJson(io: ConsoleIo, raw: string, main: string | null): ParsedInput | null {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return this.reject(io, `not JSON: expected {"text": "hello"}, got ${JSON.stringify(raw.slice(0, 80))}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.reject(io, 'expected a JSON object such as {"text": "hello"}');
    }
    const { text, sender, chat, id, replyTo, attachments } = value as Record<string, unknown>;
    const files = attachments === undefined ? [] : this.parseAttachments(io, attachments);
    if (files === null) return null;
    if (typeof text !== 'string' && !(text === undefined && files.length > 0))
      return this.reject(io, 'field "text" must be a string, e.g. {"text": "hello"}');
    if (sender !== undefined && typeof sender !== 'string') {
      return this.reject(io, 'field "sender" must be a string, e.g. {"text": "hi", "sender": "alice"}');
    }
    if (chat !== undefined && (typeof chat !== 'string' || !(chat.startsWith('local:') || chat === main))) {
      return this.reject(
        io,
        'field "chat" must be a local chat id, e.g. {"text": "hi", "chat": "local:family"}',
      );
    }
    if (id !== undefined && (typeof id !== 'string' || id.trim() === '' || id.startsWith('local-'))) {
      return this.reject(
        io,
        'field "id" must be a non-empty string not starting with "local-", e.g. {"text": "hi", "id": "q1"}',
      );
    }
    if (replyTo !== undefined && (typeof replyTo !== 'string' || replyTo.trim() === '')) {
      return this.reject(
        io,
        'field "replyTo" must be the id of an earlier message, e.g. {"text": "yes", "replyTo": "q1"}',
      );
    }
    // `local:main` names the main group whatever its chat id, as the terminal does.
    const chatJid = chat === undefined || chat === LOCAL_MAIN_JID ? main : chat;
    if (chatJid === null) return this.reject(io, NO_MAIN);
    if (chatJid !== main && !this.options.isRegistered(chatJid)) {
      return this.reject(
        io,
        `chat "${chatJid}" is not a registered group; add it with: nanoclaw groups add ${chatJid} --name NAME --folder FOLDER --trigger @${this.options.assistantName}`,
      );
    }
    return {
      text: text ?? '',
      sender: sender ?? 'user',
      chat: chatJid,
      ...(id !== undefined ? { id } : {}),
      ...(replyTo !== undefined ? { replyTo } : {}),
      ...(files.length > 0 ? { attachments: files } : {}),
    };
  }

  /** `[{"path", "type"?}]`: each file must exist now; it is read when the host stores it. */
  private parseAttachments(io: ConsoleIo, value: unknown): InboundAttachment[] | null {
    const usage = 'field "attachments" must be a list like [{"path": "photo.jpg", "type": "image/jpeg"}]';
    if (!Array.isArray(value)) return this.reject(io, usage);
    const files: InboundAttachment[] = [];
    for (const entry of value as unknown[]) {
      if (typeof entry !== 'object' || entry === null) return this.reject(io, usage);
      const { path: given, type } = entry as Record<string, unknown>;
      if (typeof given !== 'string' || given === '' || (type !== undefined && typeof type !== 'string')) {
        return this.reject(io, usage);
      }
      const file = path.resolve(io.cwd ?? process.cwd(), given);
      let sizeBytes: number;
      try {
        const stat = fs.statSync(file);
        if (!stat.isFile())
          return this.reject(io, `attachment ${JSON.stringify(given)} is not a regular file`);
        sizeBytes = stat.size;
      } catch {
        return this.reject(io, `attachment ${JSON.stringify(given)} cannot be read: check the path`);
      }
      const mime = type ?? typeForFileName(file);
      files.push({
        kind: kindOfType(mime),
        type: mime,
        declaredBytes: sizeBytes,
        fileName: path.basename(file),
        open: async () => fs.createReadStream(file),
      });
    }
    return files;
  }

  private reject(io: ConsoleIo, message: string): null {
    io.errors.write(`nanoclaw chat: input line ignored: ${message}\n`);
    return null;
  }
}

const NO_MAIN =
  'no main group is registered yet; link WhatsApp with nanoclaw start (or nanoclaw auth whatsapp, then nanoclaw groups add-main)';
