// The local channel's input parsing: what a terminal line becomes as an
// InboundMessage, in plain and JSON mode.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ChannelEvents } from '../../../src/core/channel.js';
import type { InboundMessage } from '../../../src/core/types.js';
import { LocalChannel, LOCAL_MAIN_JID } from '../../../src/channels/local/local-channel.js';

async function received(json: boolean, lines: string[]): Promise<InboundMessage[]> {
  const input = new PassThrough();
  const messages: InboundMessage[] = [];
  let ended!: () => void;
  const inputEnded = new Promise<void>((resolve) => (ended = resolve));
  const events: ChannelEvents = {
    onMessage: (message) => void messages.push(message),
    onChatMetadata: () => undefined,
    onConnectionChange: () => undefined,
  };
  const channel = new LocalChannel({
    console: { input, output: new PassThrough(), errors: new PassThrough(), json, onInputEnd: ended },
    assistantName: 'Andy',
    events,
    isRegistered: (jid) => jid === 'local:family',
    now: () => Date.parse('2026-03-01T12:00:00Z'),
  });
  await channel.connect();
  input.end(lines.map((line) => `${line}\n`).join(''));
  await inputEnded;
  await channel.disconnect();
  return messages;
}

describe('local channel input', () => {
  it("marks the terminal's lines to local:main as the owner's", async () => {
    const [plain] = await received(false, ['hello']);
    expect(plain).toMatchObject({ chatJid: LOCAL_MAIN_JID, text: 'hello', fromMe: false, fromOwner: true });
    const [json] = await received(true, ['{"text":"hi there"}']);
    expect(json).toMatchObject({ chatJid: LOCAL_MAIN_JID, text: 'hi there', fromOwner: true });
  });

  it("does not mark lines in other local chats as the owner's", async () => {
    const messages = await received(true, ['{"text":"milk?","sender":"bob","chat":"local:family"}']);
    expect(messages).toMatchObject([{ chatJid: 'local:family', senderName: 'bob', fromOwner: false }]);
  });
});
