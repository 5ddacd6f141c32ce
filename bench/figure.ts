// One benchmark figure, printed as one JSON line by `npm run bench`. Every
// figure carries its spread over the runs that made it (min/median/max); a
// figure measured once has runs 1 and all three equal to its value.
export interface BenchSpread {
  min: number;
  median: number;
  max: number;
  runs: number;
}

export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  spread?: BenchSpread;
  /** Said when a figure was measured under an emulated limit (a cgroup), not on the real thing. */
  note?: string;
}

/** The p-th percentile (0–100) of the samples, nearest-rank. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Rounds to `digits` decimals. */
export function roundTo(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** A figure whose value is the median of its runs, with their spread. */
export function medianFigure(name: string, samples: number[], unit: string, digits = 1): BenchFigure {
  const median = roundTo(percentile(samples, 50), digits);
  return {
    name,
    value: median,
    unit,
    spread: {
      min: roundTo(Math.min(...samples), digits),
      median,
      max: roundTo(Math.max(...samples), digits),
      runs: samples.length,
    },
  };
}

/** The spread of a figure measured once: its own value, one run. */
export function withSpread(figure: BenchFigure): BenchFigure {
  if (figure.spread) return figure;
  const { value } = figure;
  return { ...figure, spread: { min: value, median: value, max: value, runs: 1 } };
}
