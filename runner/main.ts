// Entry point of the in-sandbox runner: speaks the JSON-lines protocol on
// stdio, brings up the loopback bridges to the broker sockets, and runs the
// engine the host asked for. stdout carries protocol lines only.

import { HostConnection } from './protocol-io.js';
import { startBridge, type Bridge } from './bridge.js';

async function main(): Promise<number> {
  // Anything a dependency prints must not corrupt the protocol stream.
  const toStderr = (...args: unknown[]): void => {
    process.stderr.write(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ') + '\n');
  };
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;

  const conn = new HostConnection(process.stdin, process.stdout);
  await conn.send({ type: 'ready' });

  let start;
  try {
    start = await conn.start;
  } catch (err) {
    await conn.send({ type: 'done', error: err instanceof Error ? err.message : String(err) });
    await conn.flush();
    return 1;
  }

  // Engines load on demand: a lite or echo run never evaluates claude-code's
  // MCP tool shapes and zod (~13 MB of a lite run's memory).
  if (start.engine === 'echo') return (await import('./engine-echo.js')).runEchoEngine(conn, start);

  const bridges: { model?: Bridge; egress?: Bridge } = {};
  try {
    // lite reaches the model socket directly; only its bash tool needs a TCP proxy.
    if (start.model && start.engine !== 'lite') bridges.model = await startBridge(start.model.socketPath);
    if (start.egress) bridges.egress = await startBridge(start.egress.socketPath);
    if (start.engine === 'lite')
      return await (await import('./engine-lite.js')).runLiteEngine(conn, start, bridges);
    return await (await import('./engine-claude.js')).runClaudeEngine(conn, start, bridges);
  } catch (err) {
    await conn.send({ type: 'done', error: err instanceof Error ? err.message : String(err) });
    return 1;
  } finally {
    await Promise.all([bridges.model?.close(), bridges.egress?.close()]);
  }
}

main().then(
  async (exitCode) => {
    // Let stdout drain before exiting; process.exit would cut a pending pipe write.
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    process.exit(exitCode);
  },
  (err: unknown) => {
    process.stderr.write(`runner crashed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
