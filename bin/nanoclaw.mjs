#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=32768 node --optimize-for-size --max-semi-space-size=1 --max-opt=1
// The `nanoclaw` command: runs the bundled CLI (build first with `npm run build`).
// The settings above size the host for a 1 GB board; the host is I/O-bound.
// Measured (docs/PERFORMANCE.md): --optimize-for-size saves ~7 MB with Baileys
// loaded, --max-opt=1 (baseline compiler, no optimizing tiers) ~4 MB without it
// and ~2 MB with it; neither slowed start-up or ingest measurably. The malloc
// threshold sends blocks of 32 KiB and more (V8's parser and compiler zones) to
// mmap, so they go back to the system when freed instead of staying in a
// fragmented heap: ~11 MB once Baileys' 3 MB of code is compiled.
import module from 'node:module';
import { settleHeapWhenIdle } from '../dist/src/cli/memory-settings.js';
import { closeInheritedFds } from '../dist/src/sandbox/inherited-fds.js';

// Before anything else loads: fds inherited from the launcher would reach every sandbox.
closeInheritedFds();
settleHeapWhenIdle();
// Node 22.1+ keeps the bundle's compiled code between starts; Node 20 has no such cache.
module.enableCompileCache?.();
const { main } = await import('../dist/host/main.mjs');

process.exitCode = await main(process.argv.slice(2));
