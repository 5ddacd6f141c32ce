// The crash drill's verdict, shared by the echo and the real-agent drills: every
// accepted message answered exactly once, in order, no sandbox left, the database
// intact. The message names the seed so a failure can be replayed.
import { expect } from 'vitest';
import type { DrillReport } from '../support/crash-drill.js';

export function expectNothingLost(report: DrillReport, minAccepted: number): void {
  const { seed } = report;
  const summary =
    `seed ${seed} (replay: FAULT_SEED=${seed}): ${report.accepted.length} accepted, ` +
    `lost ${JSON.stringify(report.lost)}, duplicated ${JSON.stringify(report.duplicated)}, ` +
    `out of order ${JSON.stringify(report.outOfOrder)}`;
  expect(report.accepted.length, summary).toBeGreaterThan(minAccepted);
  expect(report.lost, summary).toEqual([]);
  expect(report.duplicated, summary).toEqual([]);
  expect(report.outOfOrder, summary).toEqual([]);
  expect(report.integrity, summary).toBe('ok');
  expect(report.orphans, summary).toEqual([]);
}
