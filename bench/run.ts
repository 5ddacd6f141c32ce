// `npm run bench`: every benchmark, one JSON line per figure
// ({"name","value","unit"}) on stdout. Targets live in the issues and the
// closing notes, not in assertions: a slow machine reports, it does not fail.

import type { BenchFigure } from './figure.js';

type Bench = () => Promise<BenchFigure[]>;

const benches: Array<[string, () => Promise<Bench>]> = [
  ['host', async () => (await import('./host.js')).benchHost],
  ['store', async () => (await import('./store.js')).benchStoreInsert],
  ['scheduler', async () => (await import('./scheduler.js')).benchScheduler],
  ['host-process', async () => (await import('./host-process.js')).benchHostProcess],
  ['broker', async () => (await import('./broker.js')).benchBroker],
  ['runs', async () => (await import('./runs.js')).benchRuns],
  ['runs-lite', async () => (await import('./runs-lite.js')).benchRunsLite],
  ['install-size', async () => (await import('./install-size.js')).benchInstallSize],
  ['recovery', async () => (await import('./recovery.js')).benchRecovery],
  ['owner-notice', async () => (await import('./owner-notice.js')).benchOwnerNotice],
];

const only = process.argv.slice(2);
let failed = false;
for (const [name, load] of benches) {
  if (only.length > 0 && !only.includes(name)) continue;
  try {
    const bench = await load();
    for (const figure of await bench()) process.stdout.write(`${JSON.stringify(figure)}\n`);
  } catch (err) {
    failed = true;
    process.stderr.write(
      `bench ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
}
process.exitCode = failed ? 1 : 0;
