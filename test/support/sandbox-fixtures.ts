// Throwaway host trees for sandbox tests: a groups/ dir, data/sessions, data/runs
// and a policy dir under one temp root that uid 1000 can traverse (bwrap is
// spawned as uid 1000 when the tests run as root).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { AuditSink, NewAuditRecord } from '../../src/core/audit.js';

export interface SandboxWorld {
  root: string;
  groupsDir: string;
  sessionsDir: string;
  runsDir: string;
  etcDir: string;
  configDir: string;
  homeDir: string;
  cleanup(): void;
}

export function makeSandboxWorld(prefix = 'nc-sandbox-'): SandboxWorld {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(root, 0o755);
  const dirs = {
    groupsDir: path.join(root, 'groups'),
    sessionsDir: path.join(root, 'data', 'sessions'),
    runsDir: path.join(root, 'data', 'runs'),
    etcDir: path.join(root, 'data', 'sandbox-etc'),
    homeDir: path.join(root, 'home'),
    configDir: path.join(root, 'home', '.config', 'nanoclaw'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(root, 'data'), 0o755);
  return { root, ...dirs, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

export { makeGroup } from './groups.js';

/** An AuditSink that keeps records in memory for assertions. */
export function memoryAudit(): AuditSink & { records: NewAuditRecord[] } {
  const records: NewAuditRecord[] = [];
  return { records, audit: (r) => void records.push(r) };
}
