// Schedule values in, due times out (SPEC §6.1–6.2). Pure apart from
// cron-parser, so every rule about validity, time zones and DST lives here and is
// tested without a store or a clock. Times are epoch ms; wall-clock readings are
// always taken in the configured time zone, never the process's TZ.

import { createRequire } from 'node:module';

import type { ScheduleType, Task } from '../core/types.js';

const requireLazily = createRequire(import.meta.url);

/**
 * cron-parser, loaded at the first cron expression rather than at start-up: with
 * luxon it costs the host ~1.5 MB of memory, and many hosts schedule no cron task.
 * A plain require (Node caches it) keeps the callers synchronous, inside their
 * transactions.
 */
function cronParser(): typeof import('cron-parser') {
  return requireLazily('cron-parser') as typeof import('cron-parser');
}

export type ScheduleField = 'schedule_type' | 'schedule_value';

export type ScheduleValidation =
  { ok: true; nextRunAt: number } | { ok: false; field: ScheduleField; message: string };

export interface ScheduleInput {
  /** Untrusted: whatever the agent or the CLI passed. */
  type: string;
  value: string;
  /** IANA zone, e.g. `Europe/Berlin`. */
  timeZone: string;
  minIntervalMs?: number;
  nowMs: number;
}

/** A `once` time this far in the past is still accepted (and runs at once): clocks and typing are not exact. */
export const ONCE_PAST_TOLERANCE_MS = 60_000;

const SCHEDULE_TYPES: readonly ScheduleType[] = ['cron', 'interval', 'once'];

const CRON_EXAMPLE = '"0 9 * * 1-5" for 09:00 on weekdays';
const CRON_SHAPE = '5 fields: minute hour day-of-month month day-of-week';
const ONCE_EXAMPLE = '"2030-06-01T09:00:00" (local time) or "2030-06-01T09:00:00+02:00"';

/** Checks a schedule as given by a user and computes its first due time. */
export function validateSchedule(input: ScheduleInput): ScheduleValidation {
  const { type, value, timeZone, nowMs } = input;
  const minIntervalMs = input.minIntervalMs ?? 60_000;
  assertTimeZone(timeZone);
  if (!(SCHEDULE_TYPES as readonly string[]).includes(type)) {
    return fail(
      'schedule_type',
      `schedule_type ${quote(type)} is not one of cron, interval, once, e.g. "cron" with schedule_value "0 9 * * 1-5"`,
    );
  }
  const trimmed = value.trim();
  if (type === 'cron') {
    const parsed = parseCron(trimmed, nowMs, timeZone);
    if (typeof parsed === 'string') {
      return fail(
        'schedule_value',
        `schedule_value ${quote(value)} is not a valid cron expression (${CRON_SHAPE})${parsed ? `: ${parsed}` : ''}, e.g. ${CRON_EXAMPLE}`,
      );
    }
    return { ok: true, nextRunAt: parsed };
  }
  if (type === 'interval') {
    const example = `e.g. "3600000" for every hour`;
    if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) {
      return fail(
        'schedule_value',
        `schedule_value ${quote(value)} is not a whole number of milliseconds, ${example}`,
      );
    }
    const intervalMs = Number(trimmed);
    if (intervalMs < minIntervalMs) {
      return fail(
        'schedule_value',
        `schedule_value ${quote(value)} is shorter than the minimum interval of ${minIntervalMs} ms, ${example}`,
      );
    }
    return { ok: true, nextRunAt: nowMs + intervalMs };
  }
  const atMs = parseLocalIso(trimmed, timeZone);
  if (atMs === null) {
    return fail(
      'schedule_value',
      `schedule_value ${quote(value)} is not an ISO timestamp, e.g. ${ONCE_EXAMPLE}`,
    );
  }
  if (atMs < nowMs - ONCE_PAST_TOLERANCE_MS) {
    return fail(
      'schedule_value',
      `schedule_value ${quote(value)} is in the past (${new Date(atMs).toISOString()}); give a future time, e.g. ${ONCE_EXAMPLE}`,
    );
  }
  return { ok: true, nextRunAt: atMs };
}

/**
 * The first due time strictly after `afterMs`, or null when there is none (a
 * `once` task after its run, or a stored value that no longer parses).
 *
 * An interval is anchored to its schedule (SPEC §6.1): given `gridAnchorMs` (the
 * due time of the run that just ended), the answer is the first slot of the grid
 * anchor + k·interval after `afterMs`, so a run's duration never pushes later
 * runs back, and slots missed while the host was down are skipped, not replayed
 * (§6.4). Without an anchor the grid starts at `afterMs`.
 */
export function nextRunAfter(
  task: Pick<Task, 'scheduleType' | 'scheduleValue'>,
  afterMs: number,
  timeZone: string,
  gridAnchorMs?: number | null,
): number | null {
  const value = task.scheduleValue.trim();
  switch (task.scheduleType) {
    case 'cron': {
      const next = parseCron(value, afterMs, timeZone);
      return typeof next === 'number' ? next : null;
    }
    case 'interval': {
      const intervalMs = Number(value);
      if (!/^\d+$/.test(value) || !(intervalMs > 0)) return null;
      if (gridAnchorMs === undefined || gridAnchorMs === null) return afterMs + intervalMs;
      // Moved forward while the run was going (update_task, resume): that time stands.
      if (gridAnchorMs > afterMs) return gridAnchorMs;
      const periodsPassed = Math.floor((afterMs - gridAnchorMs) / intervalMs) + 1;
      return gridAnchorMs + periodsPassed * intervalMs;
    }
    case 'once':
      return null;
  }
}

/** Next occurrence after `afterMs`, or the reason it cannot be computed ('' when the parser says nothing useful). */
function parseCron(expression: string, afterMs: number, timeZone: string): number | string {
  const fields = expression.split(/\s+/).filter(Boolean);
  // cron-parser also takes 6 fields (seconds) and @aliases; the contract is 5 fields.
  if (fields.length !== 5) return `it has ${fields.length} field${fields.length === 1 ? '' : 's'}`;
  try {
    return cronParser()
      .CronExpressionParser.parse(fields.join(' '), { currentDate: afterMs, tz: timeZone })
      .next()
      .getTime();
  } catch (error) {
    return error instanceof Error ? error.message : '';
  }
}

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Parses an ISO date-time. With an offset (or Z) it is absolute; without one it
 * is wall-clock time in `timeZone`. Nonexistent local times (spring-forward gap)
 * move forward by the gap and ambiguous ones (fall-back) take the earlier
 * instant, the same choice cron-parser makes, and Temporal's "compatible".
 */
export function parseLocalIso(text: string, timeZone: string): number | null {
  const match = ISO_RE.exec(text);
  if (!match) return null;
  const [, y, mo, d, h, mi, s = '0', frac = '0', offset] = match;
  const fields = [y, mo, d, h, mi, s].map(Number);
  const [year, month, day, hour, minute, second] = fields;
  const ms = Math.round(Number(`0.${frac}`) * 1000);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const wallMs = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (new Date(wallMs).getUTCDate() !== day) return null; // e.g. 2030-02-30
  if (offset !== undefined) return wallMs - offsetFromText(offset);
  return wallTimeToUtc(wallMs, timeZone);
}

function offsetFromText(offset: string): number {
  if (offset.toUpperCase() === 'Z') return 0;
  const sign = offset.startsWith('-') ? -1 : 1;
  const digits = offset.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2) || '0');
  return sign * (hours * 60 + minutes) * 60_000;
}

const DAY_MS = 86_400_000;

/** `wallMs` is the local reading encoded as if it were UTC. */
function wallTimeToUtc(wallMs: number, timeZone: string): number {
  const offsetBeforeMs = zoneOffsetMs(wallMs - DAY_MS, timeZone);
  const offsetAfterMs = zoneOffsetMs(wallMs + DAY_MS, timeZone);
  const candidates = [wallMs - offsetBeforeMs, wallMs - offsetAfterMs].filter(
    (utcMs) => utcMs + zoneOffsetMs(utcMs, timeZone) === wallMs,
  );
  if (candidates.length > 0) return Math.min(...candidates);
  // In a gap: read the wall time with the offset in force before the jump.
  return wallMs - offsetBeforeMs;
}

/** Offset of `timeZone` from UTC at the instant `utcMs` (positive east of Greenwich). */
function zoneOffsetMs(utcMs: number, timeZone: string): number {
  return zoneOffsetReader(timeZone)(utcMs);
}

/**
 * Reads the offset of `timeZone` from UTC at any instant, with one Intl
 * formatter built up front (callers formatting many instants reuse it).
 */
export function zoneOffsetReader(timeZone: string): (utcMs: number) => number {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  return (utcMs) => {
    const parts = format.formatToParts(new Date(utcMs));
    const get = (type: Intl.DateTimeFormatPartTypes): number =>
      Number(parts.find((part) => part.type === type)?.value ?? 0);
    const wallMs = Date.UTC(
      get('year'),
      get('month') - 1,
      get('day'),
      get('hour'),
      get('minute'),
      get('second'),
    );
    const wholeSecondUtcMs = Math.floor(utcMs / 1000) * 1000;
    return wallMs - wholeSecondUtcMs;
  };
}

/** A bad zone is a configuration error, not the user's: throw rather than blame the schedule. */
function assertTimeZone(timeZone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw new RangeError(`time zone ${quote(timeZone)} is not a known IANA zone, e.g. "Europe/Berlin"`);
  }
}

function fail(field: ScheduleField, message: string): ScheduleValidation {
  return { ok: false, field, message };
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
