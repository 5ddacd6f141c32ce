// Human tables for the owner's commands: a header row first, then one row per
// item, columns padded to the widest cell so they line up in a terminal.
// Scripts use `--json` instead, which never has a header.

import type { Print } from './admin.js';

/** Two spaces between columns: cells may contain single spaces (names, schedules). */
const COLUMN_GAP = '  ';

export function printTable(
  print: Print,
  header: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  // Measured after folding whitespace, as printed: a newline in a name must not break the table.
  const fold = (cell: string) => cell.replace(/\s+/g, ' ');
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => fold(r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map(fold)
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i])))
      .join(COLUMN_GAP)
      .trimEnd();
  print(line(header));
  for (const row of rows) print(line(row));
}
