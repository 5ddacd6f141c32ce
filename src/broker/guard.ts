// Host-survival guards shared by the model and egress proxies (SPEC §10.9). A
// sandbox can open connections far faster than we can audit them, so each
// per-run server caps its concurrent connections, refuses the rest at accept
// (Node closes them before any parsing), and writes one audit record per run
// and refusal kind with a count in the log, never one row per connection. A
// server 'error' (EMFILE on accept when the host is out of descriptors) is
// logged, never thrown: it must not take the host down.

import type { Server } from 'node:net';
import type { AuditAction, AuditReason, AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';

/** Concurrent connections one run may hold on each broker socket; small-board default. */
export const DEFAULT_MAX_CONNECTIONS_PER_RUN = 32;

export interface RunIdentity {
  runId: string;
  groupFolder: string;
}

/** Refusals that can come in floods: the first of each kind is audited, the rest counted. */
export interface RefusalCounter {
  refuse(reason: AuditReason, target: string | null): void;
  /** Logs how many refusals of each kind the run saw beyond the audited first one. */
  summarize(): void;
}

export function createRefusalCounter(
  action: AuditAction,
  run: RunIdentity,
  audit: AuditSink,
  logger: Logger | undefined,
): RefusalCounter {
  const counts = new Map<AuditReason, number>();
  return {
    refuse(reason, target) {
      const seen = counts.get(reason) ?? 0;
      counts.set(reason, seen + 1);
      if (seen > 0) return;
      audit.audit({ group: run.groupFolder, runId: run.runId, action, target, reason });
      logger?.warn(
        { group: run.groupFolder, runId: run.runId, action, reason },
        'broker refusal; further ones of this kind in this run are counted, not audited',
      );
    },
    summarize() {
      for (const [reason, refused] of counts) {
        if (refused < 2) continue;
        logger?.warn(
          { group: run.groupFolder, runId: run.runId, action, reason, refused },
          'broker refusals in this run',
        );
      }
    },
  };
}

/**
 * Caps the server's concurrent connections (Node refuses past `maxConnections`
 * right after accept and emits 'drop') and keeps server errors from crashing
 * the process. Call after listen succeeded.
 */
export function guardServer(
  server: Server,
  options: {
    maxConnections: number;
    refusals: RefusalCounter;
    run: RunIdentity;
    logger: Logger | undefined;
    name: string;
  },
): void {
  server.maxConnections = options.maxConnections;
  server.on('drop', () => options.refusals.refuse('connection_limit', null));
  let errors = 0;
  server.on('error', (err: NodeJS.ErrnoException) => {
    // Accept errors repeat for as long as the host is out of descriptors: log the first and every 1000th.
    if (errors++ % 1000 !== 0) return;
    options.logger?.error(
      {
        group: options.run.groupFolder,
        runId: options.run.runId,
        server: options.name,
        code: err.code,
        syscall: err.syscall,
        errors,
      },
      'broker server error (the run goes on)',
    );
  });
}
