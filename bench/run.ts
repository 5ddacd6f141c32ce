// `npm run bench`: every benchmark, one JSON line per figure
// ({"name","value","unit","spread":{min,median,max,runs}}) on stdout. Targets live in the issues and the
// closing notes, not in assertions: a slow machine reports, it does not fail.

import { withSpread, type BenchFigure } from './figure.js';

type Bench = () => Promise<BenchFigure[]>;

const benches: Array<[string, () => Promise<Bench>]> = [
  ['host', async () => (await import('./host.js')).benchHost],
  ['store', async () => (await import('./store.js')).benchStoreInsert],
  ['scheduler', async () => (await import('./scheduler.js')).benchScheduler],
  ['host-process', async () => (await import('./host-process.js')).benchHostProcess],
  ['broker', async () => (await import('./broker.js')).benchBroker],
  ['runs', async () => (await import('./runs.js')).benchRuns],
  ['runs-lite', async () => (await import('./runs-lite.js')).benchRunsLite],
  ['recovery', async () => (await import('./recovery.js')).benchRecovery],
  ['owner-notice', async () => (await import('./owner-notice.js')).benchOwnerNotice],
  ['media', async () => (await import('./media.js')).benchMedia],
  ['soak', async () => (await import('./soak.js')).benchSoak],
  ['install-size', async () => (await import('./install-size.js')).benchInstallSize],
];

// `--board 1gb|512mb [--engine lite]` runs a board profile instead (see bench/board.ts; Claude Code
// unless `--engine` says otherwise); other words pick benches by name.
const argv = process.argv.slice(2);
const boardAt = argv.indexOf('--board');
const only = boardAt >= 0 ? [] : argv;
if (boardAt >= 0) {
  const board = argv[boardAt + 1] ?? '1gb';
  const engineAt = argv.indexOf('--engine');
  const engine = engineAt >= 0 ? argv[engineAt + 1] : 'claude-code';
  benches.splice(0, benches.length, [
    `board ${board} ${engine}`,
    async () => {
      const { benchBoard } = await import('./board.js');
      if (engine !== 'claude-code' && engine !== 'lite') {
        throw new Error(`--engine must be claude-code or lite, not "${engine ?? ''}"`);
      }
      return () => benchBoard(board, engine);
    },
  ]);
}
let failed = false;
for (const [name, load] of benches) {
  if (only.length > 0 && !only.includes(name)) continue;
  try {
    const bench = await load();
    for (const figure of await bench()) process.stdout.write(`${JSON.stringify(withSpread(figure))}\n`);
  } catch (err) {
    failed = true;
    process.stderr.write(
      `bench ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
}
process.exitCode = failed ? 1 : 0;
