#!/usr/bin/env -S node --optimize-for-size --max-semi-space-size=1
// The `nanoclaw` command: runs the compiled CLI (build first with `npm run build`).
// The V8 flags above size the heap for a 1 GB board (a small young generation,
// code and heap tuned for memory over peak speed); the host is I/O-bound.
import { closeInheritedFds } from '../dist/src/sandbox/inherited-fds.js';

// Before anything else loads: fds inherited from the launcher would reach every sandbox.
closeInheritedFds();
const { main } = await import('../dist/src/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
