// The CLI side of the control socket: finds the running host of a data dir,
// runs a command inside it, or attaches this terminal to it as a console.
// "No host" (no socket, or nobody listening) is an answer, not an error: the
// caller then works on the data dir itself, under the host lock.

import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import readline from 'node:readline';
import {
  CONTROL_VERSION,
  chatAttachedSchema,
  commandOutputSchema,
  parseServerLine,
  type ChatAttached,
  type CommandOutput,
  type ControlReply,
  type ControlRequest,
} from '../core/control.js';
import { CliError, HostLockedError } from './context.js';
import { onControlLines, writeControlLine } from './control-lines.js';
import { controlSocketPath } from './control-server.js';

/** A command that takes longer (doctor's upstream check, a slow disk) still answers well within this. */
const COMMAND_TIMEOUT_MS = 120_000;
const CONNECT_TIMEOUT_MS = 5_000;

/** Connects to the host's socket; null when no host listens there. */
async function connectToHost(dataDir: string): Promise<net.Socket | null> {
  const socketPath = controlSocketPath(dataDir);
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new CliError(`nanoclaw: the host did not answer on ${socketPath} within 5 s; is it stuck?`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(null);
      else if (err.code === 'EACCES') {
        reject(new CliError(`nanoclaw: ${socketPath} belongs to another user; run this as the host's user`));
      } else reject(new CliError(`nanoclaw: cannot reach the host on ${socketPath}: ${err.message}`));
    });
  });
}

/** How long a command waits for a host that holds the lock but is not listening yet (starting up). */
export const HOST_STARTING_WAIT_MS = 30_000;

/**
 * Runs `viaHost` on the running host when there is one, else `locally` (which
 * takes the host lock). The lock can be busy with nobody to talk to — a host
 * still starting, or another command working on the data dir — and both clear
 * within seconds, so both ways are tried again until one works or time is up.
 */
export async function onHostOrLocally<T>(
  dataDir: string,
  viaHost: (socket: net.Socket) => Promise<T>,
  locally: () => Promise<T>,
  waitMs = HOST_STARTING_WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const socket = await connectToHost(dataDir);
    if (socket) return viaHost(socket);
    try {
      return await locally();
    } catch (err) {
      if (!(err instanceof HostLockedError) || Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function replyOf<T>(reply: ControlReply, parse: (value: unknown) => T): T {
  if (!reply.ok)
    throw new CliError(`nanoclaw: ${reply.error.message}`, reply.error.code === 'E_CONTROL_VERSION' ? 2 : 1);
  return parse(reply.result);
}

function hostStopped(): CliError {
  return new CliError('nanoclaw: the host closed the connection (it stopped?); try again', 1);
}

/** Runs `argv` inside the host; resolves with what it printed and its exit code. */
export function runInHost(socket: net.Socket, argv: string[]): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new CliError('nanoclaw: the host did not answer within 120 s', 1));
    }, COMMAND_TIMEOUT_MS);
    const finish = (fn: () => void): void => {
      clearTimeout(timer);
      socket.end();
      fn();
    };
    socket.on('error', () => undefined);
    socket.once('close', () => finish(() => reject(hostStopped())));
    onControlLines(
      socket,
      (line) => {
        const parsed = parseServerLine(line);
        if (parsed?.kind !== 'reply' || parsed.reply.id !== 1) return;
        finish(() => {
          try {
            resolve(replyOf(parsed.reply, (v) => commandOutputSchema.parse(v)));
          } catch (err) {
            reject(err);
          }
        });
      },
      () => finish(() => reject(hostStopped())),
    );
    const request: ControlRequest = { v: CONTROL_VERSION, id: 1, op: 'command', args: { argv } };
    writeControlLine(socket, request);
  });
}

export interface AttachIo {
  input: Readable;
  output: Writable;
  errors: Writable;
  json: boolean;
  /** Called once the host accepted the console (the greeting goes here). */
  onAttached?: (attached: ChatAttached) => void;
}

/**
 * This terminal as a console of the running host: input lines go to the main
 * group; the host's lines come back. Resolves with the exit code once input
 * ended and the host answered what was sent.
 */
export function attachToHost(socket: net.Socket, io: AttachIo): Promise<number> {
  return new Promise((resolve, reject) => {
    let nextId = 2;
    let attached = false;
    let done = false;
    let lines: readline.Interface | null = null;
    // Once over, stop reading the terminal so the process can exit.
    const stopInput = (): void => {
      lines?.close();
      io.input.pause();
    };
    const send = (request: Omit<ControlRequest, 'v' | 'id'>): void =>
      writeControlLine(socket, { v: CONTROL_VERSION, id: nextId++, ...request });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      if (done) return;
      done = true;
      stopInput();
      reject(
        new CliError(
          'nanoclaw chat: the host stopped; what you sent is stored and answered when it runs again',
          1,
        ),
      );
    });
    const startInput = (): void => {
      lines = readline.createInterface({ input: io.input, crlfDelay: Infinity });
      lines.on('line', (line) => send({ op: 'chat.input', args: { line } }));
      lines.on('close', () => {
        if (!done) send({ op: 'chat.end', args: {} });
      });
    };
    onControlLines(
      socket,
      (line) => {
        const parsed = parseServerLine(line);
        if (!parsed) return;
        if (parsed.kind === 'reply') {
          if (parsed.reply.id !== 1 || attached) return;
          try {
            const info = replyOf(parsed.reply, (v) => chatAttachedSchema.parse(v));
            attached = true;
            io.onAttached?.(info);
            startInput();
          } catch (err) {
            done = true;
            socket.destroy();
            reject(err);
          }
          return;
        }
        const { event } = parsed;
        if (event.event === 'out') io.output.write(event.data);
        else if (event.event === 'err') io.errors.write(event.data);
        else {
          done = true;
          stopInput();
          socket.end();
          resolve(event.exitCode);
        }
      },
      () => socket.destroy(),
    );
    writeControlLine(socket, {
      v: CONTROL_VERSION,
      id: 1,
      op: 'chat',
      args: { json: io.json, cwd: process.cwd() },
    } satisfies ControlRequest);
  });
}
