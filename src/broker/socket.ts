// Unix-socket plumbing shared by the model and egress proxies. The sandbox runs
// as a different uid, so the socket file itself must be connectable by anyone
// (0666); access control is the per-run directory, which the host creates and
// binds into exactly one sandbox.

import { chmod, lstat, unlink } from 'node:fs/promises';
import type { Server } from 'node:net';
import type { Socket } from 'node:net';

/** Socket file mode: world-connectable; the enclosing per-run directory is the real gate. */
export const SOCKET_FILE_MODE = 0o666;

async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  // Never clobber a regular file or symlink someone put where our socket goes.
  if (!isSocket) throw new Error(`refusing to replace non-socket file at ${socketPath}`);
  await unlink(socketPath);
}

export async function listenOnUnixSocket(server: Server, socketPath: string): Promise<void> {
  await removeStaleSocket(socketPath);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(socketPath, () => {
      server.off('error', onError);
      resolve();
    });
  });
  await chmod(socketPath, SOCKET_FILE_MODE);
}

/** Tracks raw sockets (including CONNECT tunnels, which the HTTP server forgets) so close() can end them. */
export function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}

export async function closeUnixServer(
  server: Server,
  sockets: Set<Socket>,
  socketPath: string,
): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of sockets) socket.destroy();
  await closed;
  await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
