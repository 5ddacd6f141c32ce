#!/usr/bin/env node
// The `nanoclaw` command: runs the compiled CLI (build first with `npm run build`).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
