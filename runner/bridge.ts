// Loopback bridges: inside the sandbox there is no network, only the unix
// sockets the broker bound in. Claude Code speaks TCP (ANTHROPIC_BASE_URL,
// HTTPS_PROXY), so each bridge listens on 127.0.0.1 and pipes every connection
// to its socket, byte for byte — the broker does all checking on the host side.

import net from 'node:net';

export interface Bridge {
  port: number;
  close(): Promise<void>;
}

export async function startBridge(socketPath: string): Promise<Bridge> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.createConnection(socketPath);
    sockets.add(client);
    sockets.add(upstream);
    const cleanup = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', cleanup);
    upstream.on('error', cleanup);
    client.on('close', cleanup);
    upstream.on('close', cleanup);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('bridge has no TCP address');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
