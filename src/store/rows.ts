// Small helpers shared by the table modules: SQLite has no booleans and logged
// text must stay bounded so a chatty task cannot grow the database without limit.

/** Longest result/error text kept in task runs and the outbox, in UTF-16 code units. */
export const MAX_LOGGED_TEXT_CHARS = 2000;

export function flag(value: boolean): 0 | 1 {
  return value ? 1 : 0;
}

/** Cuts text to at most `maxChars`, marking the cut; never splits a surrogate pair. */
export function truncateText(text: string, maxChars: number = MAX_LOGGED_TEXT_CHARS): string {
  if (text.length <= maxChars) return text;
  let end = maxChars - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

export function truncateOrNull(text: string | null): string | null {
  return text === null ? null : truncateText(text);
}

/** Epoch ms of an ISO timestamp, or `fallbackMs` when it does not parse. */
export function isoToMs(iso: string, fallbackMs: number): number {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : fallbackMs;
}

/** Rounds epoch-ms values: STRICT INTEGER columns refuse fractional numbers. */
export function wholeMsOrNull(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms);
}
