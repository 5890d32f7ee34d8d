/**
 * Settlement days (清算日, ../shared/spec/reconciliation-file.md): a settle day runs from 23:00 China
 * time the day before to 23:00, so a trade at 23:30 on the 5th belongs to the 6th. Days are
 * `YYYY-MM-DD`; the acquirer writes them as `MMDD` with no year.
 */
import { chinaTimestamp } from '../shared/clock';

export const CUTOFF_HHMMSS = '230000';
const DAY_MS = 86_400_000;

export function isSettleDay(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** `YYYYMMDD` form of a settle day. */
export const compact = (day: string): string => day.replace(/-/g, '');
/** The `MMDD` the acquirer uses. */
export const mmdd = (day: string): string => day.slice(5, 7) + day.slice(8, 10);

/** The settle day a trade made at `txnTime` (YYYYMMDDhhmmss, China time) belongs to. */
export function settleDayOfTxnTime(txnTime: string): string {
  const day = `${txnTime.slice(0, 4)}-${txnTime.slice(4, 6)}-${txnTime.slice(6, 8)}`;
  return txnTime.slice(8, 14) >= CUTOFF_HHMMSS ? addDays(day, 1) : day;
}

/** The settle day in progress at `now`. */
export const settleDayAt = (now: Date): string => settleDayOfTxnTime(chinaTimestamp(now));

/**
 * The year of an `MMDD` that was written close to `near` (a trade time or a file's day): the
 * candidate in the year before, the same or the year after that is nearest, so 0101 written for a
 * trade of 31 December is next year's.
 */
export function dayFromMmdd(md: string, near: string): string {
  const y = Number(near.slice(0, 4));
  const candidates = [y - 1, y, y + 1].map((yy) => `${yy}-${md.slice(0, 2)}-${md.slice(2, 4)}`).filter(isSettleDay);
  const t = Date.parse(`${near.slice(0, 10)}T00:00:00Z`);
  candidates.sort((a, b) => Math.abs(Date.parse(`${a}T00:00:00Z`) - t) - Math.abs(Date.parse(`${b}T00:00:00Z`) - t));
  if (!candidates.length) throw new Error(`not a month and day: ${md}`);
  return candidates[0];
}

/** Bounds of the `txn_time` strings (YYYYMMDDhhmmss) that belong to a settle day by the cut-off: [from, to). */
export function txnTimeRange(day: string): { from: string; to: string } {
  return { from: `${compact(addDays(day, -1))}${CUTOFF_HHMMSS}`, to: `${compact(day)}${CUTOFF_HHMMSS}` };
}
