import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRefusalCounter, guardServer } from '../../../src/broker/guard.js';
import { listenOnUnixSocket } from '../../../src/broker/socket.js';
import { collectAudit, collectLogs, tempDir } from './helpers.js';

const RUN = { runId: 'run-g', groupFolder: 'family' };
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** The error Node's net server emits when accept(2) fails (lib/net.js onconnection). */
function acceptError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${code}`), { code, errno: -24, syscall: 'accept' });
}

describe('broker server guard', () => {
  it('logs an accept error instead of throwing it, and the server keeps accepting', async () => {
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    const socketPath = join(tmp.dir, 'g.sock');
    const server = net.createServer((socket) => socket.end('hello'));
    await listenOnUnixSocket(server, socketPath);
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const audit = collectAudit();
    const logs = collectLogs();
    const refusals = createRefusalCounter('model_request', RUN, audit, logs);
    guardServer(server, { maxConnections: 4, refusals, run: RUN, logger: logs, name: 'model proxy' });

    // Without a listener, emitting 'error' throws: this is what would take the host down.
    for (let i = 0; i < 2_500; i++) expect(() => server.emit('error', acceptError('EMFILE'))).not.toThrow();
    const errors = logs.entries.filter((e) => e.msg === 'broker server error (the run goes on)');
    // A flood is logged sparsely: the first and every 1000th.
    expect(errors.map((e) => e.fields)).toEqual([
      {
        group: 'family',
        runId: 'run-g',
        server: 'model proxy',
        code: 'EMFILE',
        syscall: 'accept',
        errors: 1,
      },
      {
        group: 'family',
        runId: 'run-g',
        server: 'model proxy',
        code: 'EMFILE',
        syscall: 'accept',
        errors: 1001,
      },
      {
        group: 'family',
        runId: 'run-g',
        server: 'model proxy',
        code: 'EMFILE',
        syscall: 'accept',
        errors: 2001,
      },
    ]);
    expect(audit.records).toEqual([]);
    const greeting = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(socketPath);
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(greeting).toBe('hello');
  });

  it('audits the first refusal of each kind per run and counts the rest into one log line', () => {
    const audit = collectAudit();
    const logs = collectLogs();
    const refusals = createRefusalCounter('egress', RUN, audit, logs);
    for (let i = 0; i < 500; i++) refusals.refuse('connection_limit', null);
    refusals.refuse('budget_exceeded', '/v1/messages');
    refusals.summarize();
    expect(audit.records).toEqual([
      { group: 'family', runId: 'run-g', action: 'egress', target: null, reason: 'connection_limit' },
      {
        group: 'family',
        runId: 'run-g',
        action: 'egress',
        target: '/v1/messages',
        reason: 'budget_exceeded',
      },
    ]);
    expect(logs.entries.filter((e) => e.msg === 'broker refusals in this run').map((e) => e.fields)).toEqual([
      { group: 'family', runId: 'run-g', action: 'egress', reason: 'connection_limit', refused: 500 },
    ]);
  });
});
