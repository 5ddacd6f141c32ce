// Bench figures carry their spread: the median is the value, min and max bound
// it, and a figure measured once says so (runs 1).
import { describe, expect, it } from 'vitest';
import { medianFigure, withSpread } from '../../../bench/figure.js';

describe('bench figure spread', () => {
  it('takes the median as the value and keeps min, max and the number of runs', () => {
    const figure = medianFigure('host_ready_ms', [130, 118, 400, 121, 125], 'ms', 0);
    expect(figure).toEqual({
      name: 'host_ready_ms',
      value: 125,
      unit: 'ms',
      spread: { min: 118, median: 125, max: 400, runs: 5 },
    });
  });

  it('rounds every number of the spread to the same digits', () => {
    const figure = medianFigure('rss', [61.74, 61.66, 62.31], 'MB', 1);
    expect(figure.spread).toEqual({ min: 61.7, median: 61.7, max: 62.3, runs: 3 });
  });

  it('gives a single measurement a spread of one run, and leaves a measured spread alone', () => {
    expect(withSpread({ name: 'x', value: 7, unit: 'ms' }).spread).toEqual({
      min: 7,
      median: 7,
      max: 7,
      runs: 1,
    });
    const measured = medianFigure('y', [1, 2, 3], 'ms');
    expect(withSpread(measured)).toBe(measured);
  });
});
