// The local channel: talk to the assistant from a terminal, or script it with
// JSON lines (`nanoclaw chat --json`). Chat ids are `local:<name>`; `local:main`
// is the owner's. In JSON mode every input line is one object
// `{"text", "sender"?, "chat"?, "id"?, "replyTo"?}` (`id` names the message so a
// later line can quote it with `replyTo`; the host looks the quoted message up
// in the store; ids are unique per chat, a repeated one counts as a redelivery
// and is stored once) and every outbound message is printed as one
// line `{"chat","text","id"}` — a stable scripting interface. `id` is the
// outbox id: a line repeated after a crash carries the same id.

import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Channel, ChannelEvents } from '../../core/channel.js';

export const LOCAL_MAIN_JID = 'local:main';

export interface LocalChannelOptions {
  input: Readable;
  output: Writable;
  /** Where input errors are reported (stderr). */
  errors: Writable;
  json: boolean;
  assistantName: string;
  events: ChannelEvents;
  /** Other local chats must be registered groups. */
  isRegistered: (jid: string) => boolean;
  now: () => number;
  /** Called once when the input ends. */
  onInputEnd: () => void;
}

interface ParsedInput {
  text: string;
  sender: string;
  chat: string;
  id?: string;
  replyTo?: string;
}

export class LocalChannel implements Channel {
  readonly name = 'local';
  readonly showsBotName = true;
  readonly maxMessageLength = 64_000;
  private readonly options: LocalChannelOptions;
  private connected = false;
  private lines: readline.Interface | null = null;
  private counter = 0;

  constructor(options: LocalChannelOptions) {
    this.options = options;
  }

  ownsJid(jid: string): boolean {
    return jid.startsWith('local:');
  }

  isConnected(): boolean {
    return this.connected;
  }

  async connect(): Promise<void> {
    this.connected = true;
    this.options.events.onConnectionChange(true);
    this.lines = readline.createInterface({ input: this.options.input, crlfDelay: Infinity });
    this.lines.on('line', (line) => this.onLine(line));
    this.lines.on('close', () => this.options.onInputEnd());
  }

  async disconnect(): Promise<void> {
    this.lines?.close();
    this.lines = null;
    this.connected = false;
  }

  async sendMessage(jid: string, text: string, delivery?: { outboxId: number }): Promise<void> {
    if (!this.connected) throw new Error('local channel is closed');
    const line = this.options.json
      ? JSON.stringify({ chat: jid, text, ...(delivery ? { id: delivery.outboxId } : {}) }) + '\n'
      : `${jid === LOCAL_MAIN_JID ? '' : `[${jid}] `}${this.options.assistantName}: ${text}\n`;
    await new Promise<void>((resolve, reject) =>
      this.options.output.write(line, (err) => (err ? reject(err) : resolve())),
    );
  }

  private onLine(raw: string): void {
    if (raw.trim() === '') return;
    const parsed = this.options.json
      ? this.parseJson(raw)
      : { text: raw, sender: 'you', chat: LOCAL_MAIN_JID };
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
      // local:main is the owner's own terminal; other local chats play other people.
      fromOwner: parsed.chat === LOCAL_MAIN_JID,
      ...(parsed.replyTo ? { replyTo: { id: parsed.replyTo } } : {}),
    });
  }

  private parseJson(raw: string): ParsedInput | null {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return this.reject(`not JSON: expected {"text": "hello"}, got ${JSON.stringify(raw.slice(0, 80))}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.reject('expected a JSON object such as {"text": "hello"}');
    }
    const { text, sender, chat, id, replyTo } = value as Record<string, unknown>;
    if (typeof text !== 'string') return this.reject('field "text" must be a string, e.g. {"text": "hello"}');
    if (sender !== undefined && typeof sender !== 'string') {
      return this.reject('field "sender" must be a string, e.g. {"text": "hi", "sender": "alice"}');
    }
    if (chat !== undefined && (typeof chat !== 'string' || !chat.startsWith('local:'))) {
      return this.reject('field "chat" must be a local chat id, e.g. {"text": "hi", "chat": "local:family"}');
    }
    if (id !== undefined && (typeof id !== 'string' || id.trim() === '' || id.startsWith('local-'))) {
      return this.reject(
        'field "id" must be a non-empty string not starting with "local-", e.g. {"text": "hi", "id": "q1"}',
      );
    }
    if (replyTo !== undefined && (typeof replyTo !== 'string' || replyTo.trim() === '')) {
      return this.reject(
        'field "replyTo" must be the id of an earlier message, e.g. {"text": "yes", "replyTo": "q1"}',
      );
    }
    const chatJid = chat ?? LOCAL_MAIN_JID;
    if (chatJid !== LOCAL_MAIN_JID && !this.options.isRegistered(chatJid)) {
      return this.reject(
        `chat "${chatJid}" is not a registered group; add it with: nanoclaw groups add ${chatJid} --name NAME --folder FOLDER --trigger @${this.options.assistantName}`,
      );
    }
    return {
      text,
      sender: sender ?? 'user',
      chat: chatJid,
      ...(id !== undefined ? { id } : {}),
      ...(replyTo !== undefined ? { replyTo } : {}),
    };
  }

  private reject(message: string): null {
    this.options.errors.write(`nanoclaw chat: input line ignored: ${message}\n`);
    return null;
  }
}
