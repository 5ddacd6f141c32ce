import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pairWhatsApp, readLinkedAccount, renderQrForTerminal } from '../../../src/channels/whatsapp/auth.js';
import { FakeBaileys, ManualTimers, flushAsync, socketError } from '../../support/fake-baileys.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wa-auth-'));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeCreds(creds: unknown): void {
  writeFileSync(join(dir, 'creds.json'), JSON.stringify(creds));
}

describe('readLinkedAccount', () => {
  it('returns null without creds', () => {
    expect(readLinkedAccount(dir)).toBeNull();
    expect(readLinkedAccount(join(dir, 'missing'))).toBeNull();
  });

  it('normalises me.id and me.lid', () => {
    writeCreds({
      me: { id: '447700900123:12@s.whatsapp.net', lid: '112233:12@lid', name: 'Me' },
      account: {},
    });
    expect(readLinkedAccount(dir)).toEqual({ jid: '447700900123@s.whatsapp.net', lid: '112233@lid' });
  });

  it('omits lid when unknown', () => {
    writeCreds({ me: { id: '447700900123@s.whatsapp.net' }, account: { details: 'x' } });
    expect(readLinkedAccount(dir)).toEqual({ jid: '447700900123@s.whatsapp.net' });
  });

  it('does not count a pairing code that was requested but never confirmed', () => {
    writeCreds({ me: { id: '447700900123@s.whatsapp.net', name: '~' }, registered: false });
    expect(readLinkedAccount(dir)).toBeNull();
  });

  it('returns null for corrupt creds', () => {
    writeFileSync(join(dir, 'creds.json'), '{not json');
    expect(readLinkedAccount(dir)).toBeNull();
  });
});

function pairing(
  baileys: FakeBaileys,
  extra: { phoneNumber?: string; timeoutMs?: number; retryDelayMs?: number; random?: () => number } = {},
) {
  const timers = new ManualTimers();
  const printed: string[] = [];
  const promise = pairWhatsApp({
    authDir: dir,
    socketFactory: baileys.factory,
    print: (t) => printed.push(t),
    timeoutMs: extra.timeoutMs ?? 120_000,
    settleMs: 0,
    retryDelayMs: extra.retryDelayMs ?? 50,
    maxRetryDelayMs: 60_000,
    random: extra.random ?? (() => 0.5),
    renderQr: async (qr) => `<QR ${qr}>`,
    setTimer: timers.setTimer,
    clearTimer: timers.clearTimer,
    ...(extra.phoneNumber !== undefined ? { phoneNumber: extra.phoneNumber } : {}),
  });
  return { promise, timers, printed };
}

describe('pairWhatsApp', () => {
  it('prints a pairing code for a phone number and resolves with the JID after the 515 restart', async () => {
    const baileys = new FakeBaileys({ id: '447700900123:3@s.whatsapp.net' });
    const { promise, timers, printed } = pairing(baileys, { phoneNumber: '+44 7700 900123' });
    await flushAsync();
    const first = baileys.latest;
    first.qr('ref-1');
    first.qr('ref-2');
    await flushAsync();
    expect(first.pairingRequests).toEqual(['447700900123']);
    expect(printed).toHaveLength(1);
    expect(printed[0]).toContain('ABCD-1234');
    expect(printed[0]).toMatch(/Link with phone number instead/);

    // Linking done: WhatsApp asks for a restart, the new socket opens.
    first.authState.creds.registered = true;
    first.close(515);
    await flushAsync();
    expect(baileys.sockets).toHaveLength(2);
    expect(first.endCalls).toBeGreaterThan(0);
    baileys.latest.authState.creds.registered = true;
    baileys.latest.open();
    timers.advance(0);
    await expect(promise).resolves.toEqual({ jid: '447700900123@s.whatsapp.net' });
    expect(baileys.latest.endCalls).toBe(1);
    expect(baileys.latest.pairingRequests).toEqual([]);
    expect(timers.size).toBe(0);
  });

  it('prints each QR code and resolves on open', async () => {
    const baileys = new FakeBaileys({ id: '15550001111:9@s.whatsapp.net' });
    const { promise, timers, printed } = pairing(baileys);
    await flushAsync();
    baileys.latest.qr('qr-one');
    baileys.latest.qr('qr-two');
    await flushAsync();
    expect(printed).toHaveLength(2);
    expect(printed[0]).toContain('<QR qr-one>');
    expect(printed[1]).toContain('<QR qr-two>');
    expect(printed[0]).toMatch(/Linked devices/);
    expect(baileys.latest.pairingRequests).toEqual([]);
    baileys.latest.open();
    timers.advance(0);
    await expect(promise).resolves.toEqual({ jid: '15550001111@s.whatsapp.net' });
  });

  it('rejects with a clear message on timeout and ends the socket', async () => {
    const baileys = new FakeBaileys();
    const { promise, timers } = pairing(baileys, { timeoutMs: 60_000 });
    await flushAsync();
    baileys.latest.qr('qr');
    timers.advance(60_000);
    await expect(promise).rejects.toThrow(
      /timed out after 60 s: the QR code was not scanned.*nanoclaw auth whatsapp/,
    );
    expect(baileys.latest.endCalls).toBe(1);
  });

  it('rejects an invalid phone number before opening a socket', async () => {
    const baileys = new FakeBaileys();
    await expect(pairing(baileys, { phoneNumber: '12' }).promise).rejects.toThrow(/international format/);
    expect(baileys.sockets).toHaveLength(0);
  });

  it('rejects when the pairing code request fails', async () => {
    const baileys = new FakeBaileys(undefined, (s) => {
      s.pairingCodeError = new Error('Connection Closed');
    });
    const { promise } = pairing(baileys, { phoneNumber: '447700900123' });
    await flushAsync();
    baileys.latest.qr('ref');
    await expect(promise).rejects.toThrow(/pairing code failed.*Connection Closed/);
  });

  it('retries after an unexpected close, with a pause', async () => {
    const baileys = new FakeBaileys({ id: '15550001111@s.whatsapp.net' });
    const { promise, timers } = pairing(baileys);
    await flushAsync();
    baileys.latest.close(408);
    await flushAsync();
    expect(baileys.sockets).toHaveLength(1);
    timers.advance(50);
    await flushAsync();
    expect(baileys.sockets).toHaveLength(2);
    baileys.latest.open();
    timers.advance(0);
    await expect(promise).resolves.toEqual({ jid: '15550001111@s.whatsapp.net' });
  });

  it('starts over with fresh keys when the stored link was revoked', async () => {
    writeCreds({ me: { id: '15550001111@s.whatsapp.net' }, account: {} });
    writeFileSync(join(dir, 'session-x.json'), '{}');
    const baileys = new FakeBaileys({ id: '15550001111@s.whatsapp.net' });
    const { promise, timers, printed } = pairing(baileys);
    await flushAsync();
    baileys.latest.close(401);
    await vi.waitFor(() => expect(baileys.sockets).toHaveLength(2));
    expect(readdirSync(dir)).toEqual([]);
    expect(printed.some((p) => /revoked/.test(p))).toBe(true);
    expect(baileys.sockets).toHaveLength(2);
    baileys.latest.close(401);
    await expect(promise).rejects.toThrow(/logged out/);
    expect(timers.size).toBe(0);
  });
});

/** Closes the latest socket with `error` and returns the pause before the next attempt. */
async function failAndMeasure(
  baileys: FakeBaileys,
  timers: ManualTimers,
  error: Error,
  timeoutMs = 120_000,
): Promise<number> {
  baileys.latest.closeWith(error);
  await flushAsync();
  const pending = timers.pendingDelaysMs().filter((ms) => ms !== timeoutMs);
  expect(pending).toHaveLength(1);
  const sockets = baileys.sockets.length;
  timers.advance(pending[0] - 1);
  await flushAsync();
  expect(baileys.sockets).toHaveLength(sockets);
  timers.advance(1);
  await flushAsync();
  expect(baileys.sockets).toHaveLength(sockets + 1);
  return pending[0];
}

describe('pairWhatsApp when WhatsApp cannot be reached', () => {
  it('says so plainly, shows no QR heading, and backs off exponentially up to the cap', async () => {
    const baileys = new FakeBaileys();
    // random() just under 1 gives the top of each [step/2, step] window: the step itself.
    const timeoutMs = 3_600_000;
    const { promise, timers, printed } = pairing(baileys, {
      retryDelayMs: 2000,
      random: () => 0.9999999,
      timeoutMs,
    });
    await flushAsync();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      delays.push(await failAndMeasure(baileys, timers, socketError('ENOTFOUND'), timeoutMs));
    }
    expect(delays).toEqual([2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    expect(printed[0]).toBe(
      'cannot reach WhatsApp (web.whatsapp.com): no network or DNS (ENOTFOUND); retrying in 2 s.',
    );
    expect(printed[6]).toContain('retrying in 1 min.');
    expect(printed.join('\n')).not.toMatch(/QR|scan/i);
    timers.advance(timeoutMs);
    await expect(promise).rejects.toThrow(/no network or DNS \(ENOTFOUND\)/);
  });

  it('times out naming the network, never an unscanned QR', async () => {
    const baileys = new FakeBaileys();
    const { promise, timers } = pairing(baileys, { timeoutMs: 60_000 });
    await flushAsync();
    baileys.latest.closeWith(socketError('EAI_AGAIN'));
    await flushAsync();
    timers.advance(60_000);
    await expect(promise).rejects.toThrow(
      'WhatsApp linking timed out after 60 s: cannot reach WhatsApp (web.whatsapp.com): no network or DNS (EAI_AGAIN). ' +
        'Check the network connection and DNS (can this machine resolve web.whatsapp.com?), then run `nanoclaw auth whatsapp` again.',
    );
    await expect(promise).rejects.not.toThrow(/QR/);
  });

  it('treats repeated 408s before any QR as unreachable, and backs off on them too', async () => {
    const baileys = new FakeBaileys();
    const { promise, timers, printed } = pairing(baileys, { retryDelayMs: 2000, random: () => 0.9999999 });
    await flushAsync();
    const delays = [];
    for (let i = 0; i < 3; i++) {
      delays.push(
        await failAndMeasure(baileys, timers, Object.assign(new Error('x'), { output: { statusCode: 408 } })),
      );
    }
    expect(delays).toEqual([2000, 4000, 8000]);
    expect(printed[0]).toBe('the connection to WhatsApp timed out (408); retrying in 2 s.');
    timers.advance(120_000);
    await expect(promise).rejects.toThrow(
      /timed out after 120 s: the connection to WhatsApp timed out \(408\)/,
    );
  });

  it('shows the heading with the first QR that arrives, and starts the backoff over after it', async () => {
    const baileys = new FakeBaileys();
    const { promise, timers, printed } = pairing(baileys, { retryDelayMs: 2000, random: () => 0.9999999 });
    await flushAsync();
    await failAndMeasure(baileys, timers, socketError('ENOTFOUND'));
    await failAndMeasure(baileys, timers, socketError('ENOTFOUND'));
    expect(printed.some((p) => /Scan this QR/.test(p))).toBe(false);
    baileys.latest.qr('qr-1');
    await flushAsync();
    expect(printed.at(-1)).toBe(
      'Scan this QR code with WhatsApp on your phone (Settings → Linked devices → Link a device):\n<QR qr-1>',
    );
    // WhatsApp ends a QR session that nobody scanned with a 408: the QR expired, retry soon.
    expect(
      await failAndMeasure(
        baileys,
        timers,
        Object.assign(new Error('QR refs attempts ended'), { output: { statusCode: 408 } }),
      ),
    ).toBe(2000);
    expect(printed.at(-1)).toBe(
      'The QR code expired before it was scanned; asking WhatsApp for a new one in 2 s.',
    );
    timers.advance(120_000);
    await expect(promise).rejects.toThrow(/the QR code was not scanned/);
  });

  it('says the pairing code was not entered only when one was shown', async () => {
    const baileys = new FakeBaileys();
    const { promise, timers } = pairing(baileys, { phoneNumber: '447700900123', timeoutMs: 60_000 });
    await flushAsync();
    baileys.latest.qr('ref');
    await flushAsync();
    timers.advance(60_000);
    await expect(promise).rejects.toThrow(/timed out after 60 s: the pairing code was not entered/);

    const silent = new FakeBaileys();
    const second = pairing(silent, { phoneNumber: '447700900123', timeoutMs: 60_000 });
    await flushAsync();
    second.timers.advance(60_000);
    await expect(second.promise).rejects.toThrow(/timed out after 60 s: WhatsApp sent no pairing code/);
  });
});

describe('renderQrForTerminal', () => {
  it('renders a compact terminal QR with qrcode-terminal', async () => {
    const out = await renderQrForTerminal('2@abcdef,ghijkl');
    const lines = out.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(10);
    expect(out).toMatch(/[▀▄█]/);
  });
});

describe('socket.ts (real Baileys, no network)', () => {
  it('exports the production factory without connecting on import', async () => {
    const mod = await import('../../../src/channels/whatsapp/socket.js');
    expect(typeof mod.createBaileysSocketFactory).toBe('function');
    expect(typeof mod.createBaileysSocketFactory()).toBe('function');
  });

  it('creates the auth dir 0700 and writes creds and key files 0600', async () => {
    const { openAuthState } = await import('../../../src/channels/whatsapp/socket.js');
    const authDir = join(dir, 'store', 'auth');
    const auth = await openAuthState(authDir);
    expect(statSync(authDir).mode & 0o777).toBe(0o700);

    await auth.saveCreds();
    await auth.flush();
    expect(existsSync(join(authDir, 'creds.json'))).toBe(true);
    expect(statSync(join(authDir, 'creds.json')).mode & 0o777).toBe(0o600);

    await auth.state.keys.set({ session: { '15550001111:2.0': Buffer.from('x') }, 'pre-key': { '1': null } });
    const files = readdirSync(authDir);
    expect(files).toContain('session-15550001111-2.0.json');
    for (const file of files) expect(statSync(join(authDir, file)).mode & 0o777).toBe(0o600);
  });

  it('tightens an existing, too-open auth dir', async () => {
    const { openAuthState } = await import('../../../src/channels/whatsapp/socket.js');
    const { chmodSync, mkdirSync } = await import('node:fs');
    const authDir = join(dir, 'open');
    mkdirSync(authDir, { mode: 0o755 });
    chmodSync(authDir, 0o755);
    await openAuthState(authDir);
    expect(statSync(authDir).mode & 0o777).toBe(0o700);
  });
});
