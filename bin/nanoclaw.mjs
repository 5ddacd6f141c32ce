#!/usr/bin/env -S node --optimize-for-size --max-semi-space-size=1 --max-opt=1
// The `nanoclaw` command: runs the bundled CLI (build first with `npm run build`).
// The V8 flags above size the host for a 1 GB board; the host is I/O-bound.
// Measured (docs/PERFORMANCE.md): --optimize-for-size saves ~7 MB with Baileys
// loaded, --max-opt=1 (baseline compiler, no optimizing tiers) ~4 MB without it
// and ~2 MB with it; neither slowed start-up or ingest measurably.
import module from 'node:module';
import { closeInheritedFds } from '../dist/src/sandbox/inherited-fds.js';

// Before anything else loads: fds inherited from the launcher would reach every sandbox.
closeInheritedFds();
// Node 22.1+ keeps the bundle's compiled code between starts; Node 20 has no such cache.
module.enableCompileCache?.();
const { main } = await import('../dist/host/main.mjs');

process.exitCode = await main(process.argv.slice(2));
