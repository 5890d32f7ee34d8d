/**
 * When to ask again about an unknown card attempt, after `checks` unanswered checks: UnionPay's
 * 1, 2, 4, 8, 16, 32 s, then every few minutes for the first hour, then hourly.
 */
export function nextCheckDelayMs(checks: number): number {
  if (checks < 6) return 1000 * 2 ** checks;
  if (checks < 12) return 60_000 * (checks - 5); // 1…6 min
  if (checks < 16) return 15 * 60_000; // quarter-hourly
  return 60 * 60_000; // hourly
}

const CHINA_OFFSET_MS = 8 * 3600_000;
const HOUR_MS = 3600_000;

/** The acquirer's day runs from 23:00 China time the day before to 23:00: shift by an hour, then take the China date. */
export function acquirerDay(at: Date): string {
  return new Date(at.getTime() + CHINA_OFFSET_MS + HOUR_MS).toISOString().slice(0, 10);
}

/** A reversal is allowed only on the acquirer day of the original (before 23:00 China time). */
export function reversalAllowed(original: Date, now: Date): boolean {
  return acquirerDay(original) === acquirerDay(now) && now.getTime() >= original.getTime();
}
