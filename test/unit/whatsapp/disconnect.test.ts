import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import makeWASocket, { useMultiFileAuthState } from '@whiskeysockets/baileys';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  classifyDisconnect,
  describeDisconnect,
  formatDelay,
  isUnreachable,
  retrySentence,
} from '../../../src/channels/whatsapp/disconnect.js';
import { disconnectError, socketError } from '../../support/fake-baileys.js';

/** Opens a real Baileys socket at `url` and returns the error it closes with. */
async function realCloseError(url: string): Promise<Error | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'wa-disconnect-'));
  try {
    const { state } = await useMultiFileAuthState(dir);
    const socket = makeWASocket({ auth: state, logger: pino({ level: 'silent' }), waWebSocketUrl: url });
    const error = await new Promise<Error | undefined>((resolve) =>
      socket.ev.on('connection.update', (u) => {
        if (u.connection === 'close') resolve(u.lastDisconnect?.error);
      }),
    );
    socket.end(undefined);
    return error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('classifyDisconnect', () => {
  it('reads the socket error behind the 408 real Baileys reports for a name that does not resolve', async () => {
    const d = classifyDisconnect(await realCloseError('wss://nanoclaw-test.invalid/ws/chat'));
    expect(d.kind).toBe('dns');
    expect(d.statusCode).toBe(408);
    expect(describeDisconnect(d)).toMatch(
      /^cannot reach WhatsApp \(web\.whatsapp\.com\): no network or DNS \((ENOTFOUND|EAI_AGAIN)\)$/,
    );
  });

  it('and for a refused connection', async () => {
    const d = classifyDisconnect(await realCloseError('ws://127.0.0.1:9/ws/chat'));
    expect(d).toEqual({ kind: 'network', statusCode: 408, errno: 'ECONNREFUSED' });
    expect(isUnreachable(d)).toBe(true);
  });

  it('tells WhatsApp status codes apart', () => {
    expect(classifyDisconnect(disconnectError(408)).kind).toBe('timed_out');
    expect(classifyDisconnect(disconnectError(401)).kind).toBe('logged_out');
    expect(classifyDisconnect(disconnectError(515)).kind).toBe('restart_required');
    expect(classifyDisconnect(disconnectError(440)).kind).toBe('replaced');
    expect(classifyDisconnect(disconnectError(428)).kind).toBe('other');
    expect(classifyDisconnect(undefined)).toEqual({ kind: 'other' });
    expect(classifyDisconnect(socketError('EAI_AGAIN')).kind).toBe('dns');
    expect(classifyDisconnect(socketError('ENETUNREACH', 'connect ENETUNREACH 1.2.3.4:443')).kind).toBe(
      'network',
    );
    expect(isUnreachable(classifyDisconnect(disconnectError(408)))).toBe(true);
    expect(isUnreachable(classifyDisconnect(disconnectError(428)))).toBe(false);
  });

  it('says one plain sentence with the delay, and nothing about QR codes', () => {
    const sentence = retrySentence(classifyDisconnect(socketError('ENOTFOUND')), 4000);
    expect(sentence).toBe(
      'cannot reach WhatsApp (web.whatsapp.com): no network or DNS (ENOTFOUND); retrying in 4 s',
    );
    expect(retrySentence(classifyDisconnect(disconnectError(408)), 90_000)).toBe(
      'the connection to WhatsApp timed out (408); retrying in 1 min 30 s',
    );
    expect(formatDelay(300_000)).toBe('5 min');
  });
});
