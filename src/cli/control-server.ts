// The running host's control socket: a unix socket in `<data>/control/` (dir
// 0700, socket 0600, so only the owner's user reaches it). Clients are the
// other `nanoclaw` commands: they run admin commands inside the host and attach
// consoles to it. The host holds the data dir's lock before it listens, so a
// socket file found at start is a dead host's and is replaced; anything else
// at that path is refused, never removed.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  CONTROL_DIR,
  CONTROL_SOCKET,
  parseControlRequest,
  type ChatAttached,
  type CommandOutput,
  type ConsoleEvent,
  type ControlErrorCode,
  type ControlReply,
} from '../core/control.js';
import type { Logger } from '../core/logger.js';
import { CliError } from './context.js';
import { onControlLines, writeControlLine } from './control-lines.js';

/** A console attached by a client: its input, and how it ends. */
export interface AttachedChat {
  attached: ChatAttached;
  line(text: string): void;
  end(): void;
  /** Resolves with the exit code once the console's input ended and what it sent is answered. */
  done: Promise<number>;
  detach(): void;
}

export interface ControlHandlers {
  command(argv: string[]): Promise<CommandOutput>;
  attachChat(
    json: boolean,
    write: (event: ConsoleEvent) => void,
    cwd?: string,
  ): AttachedChat | { code: ControlErrorCode; message: string };
}

export interface ControlServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

export function controlSocketPath(dataDir: string): string {
  return path.join(dataDir, CONTROL_DIR, CONTROL_SOCKET);
}

/**
 * Clears a dead host's socket; refuses a path that is something else (a file
 * someone put there). Called before the host starts, so a refusal leaves nothing running.
 */
export function clearStaleSocket(socketPath: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new CliError(
      `nanoclaw: ${socketPath} exists and is not a socket; move it away so the host can listen there`,
    );
  }
  // We hold the data dir's lock: no live host of this data dir can be listening on it.
  fs.rmSync(socketPath, { force: true });
}

export async function startControlServer(options: {
  dataDir: string;
  logger: Logger;
  handlers: ControlHandlers;
}): Promise<ControlServer> {
  const { logger, handlers } = options;
  const dir = path.join(options.dataDir, CONTROL_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const socketPath = controlSocketPath(options.dataDir);
  clearStaleSocket(socketPath);
  const connections = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    serveConnection(socket, handlers, logger);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The umask could leave the socket group-readable for a moment; the 0700 dir covers that window.
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(socketPath, 0o600);
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
        fs.rmSync(socketPath, { force: true });
      }),
  };
}

function serveConnection(socket: net.Socket, handlers: ControlHandlers, logger: Logger): void {
  let chat: AttachedChat | null = null;
  const reply = (value: ControlReply): void => writeControlLine(socket, value);
  const fail = (id: number, code: ControlErrorCode, message: string): void =>
    reply({ id, ok: false, error: { code, message } });
  socket.on('error', () => undefined);
  socket.on('close', () => chat?.detach());
  onControlLines(
    socket,
    (line) => {
      const parsed = parseControlRequest(line);
      if (!parsed.ok) {
        fail(parsed.id, parsed.code, parsed.message);
        return;
      }
      const { request } = parsed;
      switch (request.op) {
        case 'command':
          handlers.command(request.args.argv).then(
            (result) => reply({ id: request.id, ok: true, result }),
            (err: unknown) => {
              logger.error({ err, argv: request.args.argv }, 'control command failed');
              fail(request.id, 'E_INTERNAL', 'internal error in the host; see its log (nanoclaw logs)');
            },
          );
          return;
        case 'chat': {
          if (chat) {
            fail(request.id, 'E_CONTROL_REQUEST', 'this connection already has a console');
            return;
          }
          const attached = handlers.attachChat(
            request.args.json,
            (event) => writeControlLine(socket, event),
            request.args.cwd,
          );
          if ('code' in attached) {
            fail(request.id, attached.code, attached.message);
            return;
          }
          chat = attached;
          reply({ id: request.id, ok: true, result: attached.attached });
          void attached.done.then((exitCode) => {
            writeControlLine(socket, { event: 'done', exitCode } satisfies ConsoleEvent);
            socket.end();
          });
          return;
        }
        case 'chat.input':
          chat?.line(request.args.line);
          return;
        case 'chat.end':
          chat?.end();
          return;
      }
    },
    () => {
      fail(0, 'E_CONTROL_REQUEST', 'request line too long');
      socket.destroy();
    },
  );
}
