#!/usr/bin/env -S node --optimize-for-size --max-semi-space-size=1
// The `nanoclaw` command: runs the bundled CLI (build first with `npm run build`).
// The V8 flags above size the heap for a 1 GB board (a small young generation,
// code and heap tuned for memory over peak speed); the host is I/O-bound.
import module from 'node:module';
import { closeInheritedFds } from '../dist/src/sandbox/inherited-fds.js';

// Before anything else loads: fds inherited from the launcher would reach every sandbox.
closeInheritedFds();
// Node 22.1+ keeps the bundle's compiled code between starts; Node 20 has no such cache.
module.enableCompileCache?.();
const { main } = await import('../dist/host/main.mjs');

process.exitCode = await main(process.argv.slice(2));
