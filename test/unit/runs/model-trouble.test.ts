import { describe, expect, it } from 'vitest';
import { watchModelTrouble } from '../../../src/runs/model-trouble.js';
import type { RunModelError } from '../../../src/runs/types.js';
import { ManualTimers } from '../../support/manual-timers.js';

const refused: RunModelError = {
  class: 'unreachable',
  retryable: true,
  message: 'api.anthropic.com is unreachable (connection refused)',
};
const overloaded: RunModelError = {
  class: 'overloaded',
  retryable: true,
  message: 'api.anthropic.com is overloaded (529)',
};
const invalid: RunModelError = {
  class: 'invalid_request',
  retryable: false,
  message: 'api.anthropic.com refused the request as invalid (400)',
};

function setUp(graceMs = 3_000) {
  const timers = new ManualTimers();
  const reported: RunModelError[] = [];
  const watch = watchModelTrouble({
    graceMs,
    onTrouble: (error) => reported.push(error),
    setTimer: timers.setTimer,
    clearTimer: timers.clearTimer,
  });
  return { timers, reported, watch };
}

describe('model trouble watch', () => {
  it('reports trouble that outlasts the grace once, with the latest cause', () => {
    const { timers, reported, watch } = setUp();
    watch.failed(refused);
    timers.advance(2_999);
    expect(reported).toEqual([]);
    watch.failed(overloaded);
    timers.advance(1);
    expect(reported).toEqual([overloaded]);
    // More failures of the same outage say nothing more.
    watch.failed(refused);
    timers.advance(60_000);
    expect(reported).toEqual([overloaded]);
    expect(timers.size).toBe(0);
  });

  it('says nothing of a blip the next try fixes', () => {
    const { timers, reported, watch } = setUp();
    watch.failed(refused);
    timers.advance(1_000);
    watch.answered();
    timers.advance(60_000);
    expect(reported).toEqual([]);
  });

  it('reports a new outage after the model answered in between', () => {
    const { timers, reported, watch } = setUp();
    watch.failed(refused);
    timers.advance(3_000);
    watch.answered();
    watch.failed(overloaded);
    timers.advance(3_000);
    expect(reported).toEqual([refused, overloaded]);
  });

  it('ignores failures retrying cannot fix, and everything once the run is over', () => {
    const { timers, reported, watch } = setUp();
    watch.failed(invalid);
    timers.advance(10_000);
    expect(reported).toEqual([]);
    watch.failed(refused);
    watch.stop();
    timers.advance(10_000);
    watch.failed(refused);
    timers.advance(10_000);
    expect(reported).toEqual([]);
  });

  it('reports at the first failure with no grace', () => {
    const { reported, watch } = setUp(0);
    watch.failed(refused);
    expect(reported).toEqual([refused]);
  });
});
