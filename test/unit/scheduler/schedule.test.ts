// Schedule validation and next-run computation (SPEC §6.1–6.2), including time
// zones and both DST transitions. Zones are explicit so the process TZ never matters.
import { describe, expect, it } from 'vitest';

import { nextRunAfter, parseLocalIso, validateSchedule } from '../../../src/scheduler/schedule.js';

const BERLIN = 'Europe/Berlin';
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const at = (text: string) => Date.parse(text);

describe('validateSchedule errors', () => {
  const nowMs = at('2025-06-01T12:00:00Z');
  const cases: Array<[string, string, 'schedule_type' | 'schedule_value', RegExp]> = [
    ['daily', '0 9 * * *', 'schedule_type', /"daily" is not one of cron, interval, once/],
    ['cron', 'every day', 'schedule_value', /not a valid cron expression \(5 fields/],
    ['cron', '* * * *', 'schedule_value', /has 4 fields/],
    ['cron', '0 0 9 * * *', 'schedule_value', /has 6 fields/],
    ['cron', '@daily', 'schedule_value', /not a valid cron expression/],
    ['cron', '61 * * * *', 'schedule_value', /not a valid cron expression/],
    ['cron', '', 'schedule_value', /has 0 fields/],
    ['interval', 'hourly', 'schedule_value', /not a whole number of milliseconds/],
    ['interval', '1.5', 'schedule_value', /not a whole number/],
    ['interval', '-60000', 'schedule_value', /not a whole number/],
    ['interval', '59999', 'schedule_value', /shorter than the minimum interval of 60000 ms/],
    ['once', 'tomorrow', 'schedule_value', /not an ISO timestamp/],
    ['once', '2025-02-30T09:00:00', 'schedule_value', /not an ISO timestamp/],
    ['once', '2025-06-01T25:00:00', 'schedule_value', /not an ISO timestamp/],
    ['once', '2025-05-01T09:00:00Z', 'schedule_value', /is in the past/],
  ];
  for (const [type, value, field, pattern] of cases) {
    it(`${type} ${JSON.stringify(value)} → ${field}`, () => {
      const result = validateSchedule({ type, value, timeZone: BERLIN, nowMs });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.field).toBe(field);
      expect(result.message).toMatch(pattern);
      expect(result.message).toContain(field);
      // Every message shows a valid example.
      expect(result.message).toMatch(/e\.g\. "/);
    });
  }

  it('quotes the example in a form that validates', () => {
    const result = validateSchedule({ type: 'cron', value: 'every day', timeZone: BERLIN, nowMs });
    expect(result).toMatchObject({ ok: false });
    if (result.ok) return;
    expect(result.message).toContain('"0 9 * * 1-5" for 09:00 on weekdays');
    expect(validateSchedule({ type: 'cron', value: '0 9 * * 1-5', timeZone: BERLIN, nowMs }).ok).toBe(true);
    expect(validateSchedule({ type: 'interval', value: '3600000', timeZone: BERLIN, nowMs }).ok).toBe(true);
    expect(validateSchedule({ type: 'once', value: '2030-06-01T09:00:00', timeZone: BERLIN, nowMs }).ok).toBe(
      true,
    );
  });

  it('throws on an unknown time zone (a configuration error, not the user’s)', () => {
    expect(() =>
      validateSchedule({ type: 'cron', value: '0 9 * * *', timeZone: 'Mars/Olympus', nowMs }),
    ).toThrow(/time zone "Mars\/Olympus"/);
  });
});

describe('validateSchedule next run', () => {
  it('reads cron in the configured zone', () => {
    const nowMs = at('2025-01-06T06:00:00Z'); // Monday 07:00 in Berlin
    const berlin = validateSchedule({ type: 'cron', value: '0 9 * * 1-5', timeZone: BERLIN, nowMs });
    expect(berlin).toEqual({ ok: true, nextRunAt: at('2025-01-06T08:00:00Z') });
    const tokyo = validateSchedule({ type: 'cron', value: '0 9 * * 1-5', timeZone: 'Asia/Tokyo', nowMs });
    expect(tokyo).toEqual({ ok: true, nextRunAt: at('2025-01-07T00:00:00Z') });
    const ny = validateSchedule({
      type: 'cron',
      value: '  0 9 * * 1-5 ',
      timeZone: 'America/New_York',
      nowMs,
    });
    expect(ny).toEqual({ ok: true, nextRunAt: at('2025-01-06T14:00:00Z') });
  });

  it('takes an interval from now, with a configurable minimum', () => {
    const nowMs = at('2025-06-01T12:00:00Z');
    expect(validateSchedule({ type: 'interval', value: '60000', timeZone: BERLIN, nowMs })).toEqual({
      ok: true,
      nextRunAt: nowMs + 60000,
    });
    expect(
      validateSchedule({ type: 'interval', value: '1000', timeZone: BERLIN, nowMs, minIntervalMs: 500 }).ok,
    ).toBe(true);
    const refused = validateSchedule({ type: 'interval', value: '1000', timeZone: BERLIN, nowMs });
    expect(refused).toMatchObject({ ok: false, field: 'schedule_value' });
  });

  it('reads a once time without offset as local time in the zone, not the process zone', () => {
    const nowMs = at('2025-06-01T00:00:00Z');
    const summer = validateSchedule({ type: 'once', value: '2025-07-01T09:00:00', timeZone: BERLIN, nowMs });
    expect(summer).toEqual({ ok: true, nextRunAt: at('2025-07-01T07:00:00Z') });
    const winter = validateSchedule({ type: 'once', value: '2025-12-01T09:00', timeZone: BERLIN, nowMs });
    expect(winter).toEqual({ ok: true, nextRunAt: at('2025-12-01T08:00:00Z') });
    const la = validateSchedule({
      type: 'once',
      value: '2025-07-01 09:00:00.250',
      timeZone: 'America/Los_Angeles',
      nowMs,
    });
    expect(la).toEqual({ ok: true, nextRunAt: at('2025-07-01T16:00:00.250Z') });
  });

  it('honours an explicit offset or Z whatever the zone', () => {
    const nowMs = at('2025-06-01T00:00:00Z');
    for (const [value, expected] of [
      ['2025-07-01T09:00:00Z', '2025-07-01T09:00:00.000Z'],
      ['2025-07-01T09:00:00+05:30', '2025-07-01T03:30:00.000Z'],
      ['2025-07-01T09:00:00-0400', '2025-07-01T13:00:00.000Z'],
      ['2025-07-01T09:00:00+02', '2025-07-01T07:00:00.000Z'],
    ]) {
      const result = validateSchedule({ type: 'once', value, timeZone: 'Asia/Tokyo', nowMs });
      expect(result.ok && iso(result.nextRunAt)).toBe(expected);
    }
  });

  it('accepts a once time up to 60 s in the past (it runs at once) and refuses older ones', () => {
    const nowMs = at('2025-06-01T12:00:00Z');
    expect(
      validateSchedule({ type: 'once', value: '2025-06-01T11:59:30Z', timeZone: BERLIN, nowMs }),
    ).toEqual({
      ok: true,
      nextRunAt: at('2025-06-01T11:59:30Z'),
    });
    // 13:58:00 Berlin is 11:58Z: two minutes ago.
    const old = validateSchedule({ type: 'once', value: '2025-06-01T13:58:00', timeZone: BERLIN, nowMs });
    expect(old).toMatchObject({ ok: false, field: 'schedule_value' });
  });
});

describe('DST', () => {
  it('runs 02:30 Berlin once on the spring-forward day, at 03:30 CEST, then 02:30 again', () => {
    const task = { scheduleType: 'cron' as const, scheduleValue: '30 2 * * *' };
    const first = nextRunAfter(task, at('2025-03-29T12:00:00Z'), BERLIN);
    expect(iso(first)).toBe('2025-03-30T01:30:00.000Z'); // 03:30 CEST: 02:30 does not exist
    const second = nextRunAfter(task, first as number, BERLIN);
    expect(iso(second)).toBe('2025-03-31T00:30:00.000Z'); // 02:30 CEST
  });

  it('runs 02:30 Berlin once on the fall-back day', () => {
    const task = { scheduleType: 'cron' as const, scheduleValue: '30 2 * * *' };
    const first = nextRunAfter(task, at('2025-10-25T12:00:00Z'), BERLIN);
    expect(iso(first)).toBe('2025-10-26T00:30:00.000Z'); // the first (CEST) 02:30
    const second = nextRunAfter(task, first as number, BERLIN);
    expect(iso(second)).toBe('2025-10-27T01:30:00.000Z'); // 02:30 CET next day, not the repeated hour
  });

  it('keeps 09:00 local across both transitions', () => {
    const task = { scheduleType: 'cron' as const, scheduleValue: '0 9 * * *' };
    const runs: string[] = [];
    let afterMs = at('2025-03-28T12:00:00Z');
    for (let i = 0; i < 4; i++) {
      afterMs = nextRunAfter(task, afterMs, BERLIN) as number;
      runs.push(iso(afterMs) as string);
    }
    expect(runs).toEqual([
      '2025-03-29T08:00:00.000Z',
      '2025-03-30T07:00:00.000Z',
      '2025-03-31T07:00:00.000Z',
      '2025-04-01T07:00:00.000Z',
    ]);
    const autumn = nextRunAfter(task, at('2025-10-26T06:00:00Z'), BERLIN);
    expect(iso(autumn)).toBe('2025-10-26T08:00:00.000Z');
  });

  it('resolves once times in the gap forward and ambiguous ones to the earlier instant', () => {
    expect(iso(parseLocalIso('2025-03-30T02:30:00', BERLIN))).toBe('2025-03-30T01:30:00.000Z');
    expect(iso(parseLocalIso('2025-10-26T02:30:00', BERLIN))).toBe('2025-10-26T00:30:00.000Z');
    expect(iso(parseLocalIso('2025-10-26T03:30:00', BERLIN))).toBe('2025-10-26T02:30:00.000Z');
    expect(iso(parseLocalIso('2025-03-30T01:59:59', BERLIN))).toBe('2025-03-30T00:59:59.000Z');
    expect(iso(parseLocalIso('2025-03-30T03:00:00', BERLIN))).toBe('2025-03-30T01:00:00.000Z');
  });
});

describe('nextRunAfter', () => {
  it('is strictly after the given time', () => {
    const task = { scheduleType: 'cron' as const, scheduleValue: '0 9 * * *' };
    expect(iso(nextRunAfter(task, at('2025-01-01T09:00:00Z'), 'UTC'))).toBe('2025-01-02T09:00:00.000Z');
    expect(iso(nextRunAfter(task, at('2025-01-01T08:59:59.999Z'), 'UTC'))).toBe('2025-01-01T09:00:00.000Z');
  });

  it('adds the interval to the given time', () => {
    expect(nextRunAfter({ scheduleType: 'interval', scheduleValue: '3600000' }, 1000, 'UTC')).toBe(3_601_000);
  });

  it('keeps an interval on the grid of its anchor, skipping missed slots', () => {
    const hourly = { scheduleType: 'interval' as const, scheduleValue: '3600000' };
    expect(nextRunAfter(hourly, 1000 + 5 * 60_000, 'UTC', 1000)).toBe(3_601_000);
    expect(nextRunAfter(hourly, 1000 + 3_600_000, 'UTC', 1000)).toBe(1000 + 2 * 3_600_000);
    expect(nextRunAfter(hourly, 1000 + 5.5 * 3_600_000, 'UTC', 1000)).toBe(1000 + 6 * 3_600_000);
    // An anchor still ahead (moved while the run went on) is kept as is.
    expect(nextRunAfter(hourly, 1000, 'UTC', 9_000_000)).toBe(9_000_000);
  });

  it('returns null for once tasks and for values that no longer parse', () => {
    expect(
      nextRunAfter({ scheduleType: 'once', scheduleValue: '2030-01-01T00:00:00Z' }, 0, 'UTC'),
    ).toBeNull();
    expect(nextRunAfter({ scheduleType: 'cron', scheduleValue: 'nope' }, 0, 'UTC')).toBeNull();
    expect(nextRunAfter({ scheduleType: 'interval', scheduleValue: 'x' }, 0, 'UTC')).toBeNull();
  });
});
