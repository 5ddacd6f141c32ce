import { describe, expect, it } from 'vitest';
import { extractQuote, extractText, parseUpsertMessage } from '../../../src/channels/whatsapp/parse.js';
import type { WAContentLike, WAMessageLike } from '../../../src/channels/whatsapp/types.js';

function msg(message: WAContentLike | null, key: Partial<WAMessageLike['key']> = {}): WAMessageLike {
  return {
    key: { remoteJid: '15552223333@s.whatsapp.net', id: 'M1', fromMe: false, ...key },
    message,
    messageTimestamp: 1_700_000_000,
    pushName: 'Alice',
  };
}

describe('extractText', () => {
  it.each<[string, WAContentLike, string | null]>([
    ['plain conversation', { conversation: 'hello' }, 'hello'],
    [
      'extended text (links, replies)',
      { extendedTextMessage: { text: '@Andy look https://x.y' } },
      '@Andy look https://x.y',
    ],
    ['image caption', { imageMessage: { caption: '@Andy what is this?' } }, '@Andy what is this?'],
    ['video caption', { videoMessage: { caption: 'watch' } }, 'watch'],
    ['document caption', { documentMessage: { caption: 'the report', fileName: 'r.pdf' } }, 'the report'],
    [
      'document with caption wrapper',
      {
        documentWithCaptionMessage: {
          message: { documentMessage: { caption: 'see attached', fileName: 'a.pdf' } },
        },
      },
      'see attached',
    ],
    ['image without caption', { imageMessage: {} }, '[image]'],
    ['video without caption', { videoMessage: { caption: '' } }, '[video]'],
    ['document without caption', { documentMessage: { fileName: 'invoice.pdf' } }, '[document] invoice.pdf'],
    ['document without name', { documentMessage: {} }, '[document]'],
    ['voice note (ptt)', { audioMessage: { ptt: true } }, '[voice message]'],
    ['audio file', { audioMessage: { ptt: false } }, '[audio]'],
    ['sticker', { stickerMessage: {} }, '[sticker]'],
    ['location', { locationMessage: {} }, '[location]'],
    ['named location', { locationMessage: { name: 'Cafe Nero' } }, '[location] Cafe Nero'],
    ['live location', { liveLocationMessage: {} }, '[live location]'],
    ['contact card', { contactMessage: { displayName: 'Bob' } }, '[contact] Bob'],
    ['poll', { pollCreationMessageV3: { name: 'Lunch?' } }, '[poll] Lunch?'],
    ['poll v1 without name', { pollCreationMessage: {} }, '[poll]'],
    [
      'ephemeral wrapper',
      { ephemeralMessage: { message: { conversation: 'disappearing' } } },
      'disappearing',
    ],
    [
      'view-once image in ephemeral chat',
      {
        ephemeralMessage: {
          message: { viewOnceMessageV2: { message: { imageMessage: { caption: 'once' } } } },
        },
      },
      'once',
    ],
    ['view-once video without caption', { viewOnceMessage: { message: { videoMessage: {} } } }, '[video]'],
    ['protocol message (delete, edit)', { protocolMessage: { type: 0 } as object }, null],
    ['reaction', { reactionMessage: { text: '👍' } as object }, null],
    ['poll vote', { pollUpdateMessage: {} }, null],
    ['unknown kind', { call: {} } as WAContentLike, null],
    ['empty conversation', { conversation: '' }, null],
    ['button reply', { buttonsResponseMessage: { selectedDisplayText: 'Yes' } }, 'Yes'],
  ])('%s', (_name, content, expected) => {
    expect(extractText(content)).toBe(expected);
  });

  it('returns null for a missing message body', () => {
    expect(extractText(null)).toBeNull();
    expect(extractText(undefined)).toBeNull();
  });

  it('reads text even when a sender-key distribution rides along (first group message)', () => {
    const content = { senderKeyDistributionMessage: {}, conversation: 'hi all' } as WAContentLike;
    expect(extractText(content)).toBe('hi all');
  });
});

describe('parseUpsertMessage', () => {
  it('parses a one-to-one message', () => {
    const parsed = parseUpsertMessage(msg({ conversation: 'hi' }));
    expect(parsed).toEqual({
      chatJid: '15552223333@s.whatsapp.net',
      id: 'M1',
      senderJid: '15552223333@s.whatsapp.net',
      fromMe: false,
      isGroup: false,
      text: 'hi',
      timestampSeconds: 1_700_000_000,
      pushName: 'Alice',
    });
  });

  it('takes the group sender from the participant and keeps LID alternates', () => {
    const parsed = parseUpsertMessage(
      msg(
        { conversation: 'yo' },
        { remoteJid: '1203630@g.us', participant: '555@lid', participantAlt: '15554445555@s.whatsapp.net' },
      ),
    );
    expect(parsed?.isGroup).toBe(true);
    expect(parsed?.senderJid).toBe('555@lid');
    expect(parsed?.senderJidAlt).toBe('15554445555@s.whatsapp.net');
  });

  it('has no sender JID for own messages and reads fromMe from the key', () => {
    const parsed = parseUpsertMessage(msg({ conversation: 'note to self' }, { fromMe: true }));
    expect(parsed?.fromMe).toBe(true);
    expect(parsed?.senderJid).toBeNull();
  });

  it('accepts a protobuf Long timestamp', () => {
    const m = { ...msg({ conversation: 'x' }), messageTimestamp: { toNumber: () => 1_650_000_000 } };
    expect(parseUpsertMessage(m)?.timestampSeconds).toBe(1_650_000_000);
  });

  it('keeps protocol messages as metadata-only events', () => {
    const parsed = parseUpsertMessage(msg({ protocolMessage: {} }));
    expect(parsed).not.toBeNull();
    expect(parsed?.text).toBeNull();
  });

  it.each(['status@broadcast', '12345@broadcast', '1203@newsletter'])('ignores %s', (jid) => {
    expect(parseUpsertMessage(msg({ conversation: 'story' }, { remoteJid: jid }))).toBeNull();
  });

  it('ignores entries without a chat or id', () => {
    expect(parseUpsertMessage(msg({ conversation: 'x' }, { remoteJid: null }))).toBeNull();
    expect(parseUpsertMessage(msg({ conversation: 'x' }, { id: undefined }))).toBeNull();
  });
});

describe('quoted messages (replies)', () => {
  it('reads the quoted id, author and text from extendedTextMessage.contextInfo', () => {
    const parsed = parseUpsertMessage(
      msg(
        {
          extendedTextMessage: {
            text: 'yes, 8 is fine',
            contextInfo: {
              stanzaId: 'Q1',
              participant: '15554445555@s.whatsapp.net',
              quotedMessage: { conversation: 'dinner at 8?' },
            },
          },
        },
        { remoteJid: '1203630@g.us', participant: '15552223333@s.whatsapp.net' },
      ),
    );
    expect(parsed?.text).toBe('yes, 8 is fine');
    expect(parsed?.quoted).toEqual({
      id: 'Q1',
      senderJid: '15554445555@s.whatsapp.net',
      text: 'dinner at 8?',
    });
  });

  it.each<[string, Parameters<typeof extractQuote>[0], ReturnType<typeof extractQuote>]>([
    [
      'an image caption replying to an image',
      {
        imageMessage: {
          caption: 'this one',
          contextInfo: { stanzaId: 'Q2', quotedMessage: { imageMessage: {} } },
        },
      },
      { id: 'Q2', text: '[image]' },
    ],
    [
      'a voice note replying inside a disappearing chat',
      {
        ephemeralMessage: {
          message: {
            audioMessage: {
              ptt: true,
              contextInfo: {
                stanzaId: 'Q3',
                participant: '1@lid',
                quotedMessage: { conversation: 'call me' },
              },
            },
          },
        },
      },
      { id: 'Q3', senderJid: '1@lid', text: 'call me' },
    ],
    [
      'a reply whose quoted content WhatsApp did not send',
      { extendedTextMessage: { text: 'hm', contextInfo: { stanzaId: 'Q4' } } },
      { id: 'Q4', text: null },
    ],
    [
      'a mention or forward (contextInfo without a quoted id)',
      { extendedTextMessage: { text: '@Bo look', contextInfo: { participant: 'x@s.whatsapp.net' } } },
      null,
    ],
    ['a plain message', { conversation: 'hi' }, null],
  ])('%s', (_name, content, expected) => {
    expect(extractQuote(content)).toEqual(expected);
  });

  it('leaves quoted out of messages that quote nothing', () => {
    expect(parseUpsertMessage(msg({ conversation: 'hi' }))).not.toHaveProperty('quoted');
  });
});
