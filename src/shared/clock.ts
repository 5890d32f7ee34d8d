/** The clock is an adapter so tests can put "now" anywhere (the 23:00 cut-off, certificate validity). */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock tests can move by hand. */
export class ManualClock implements Clock {
  constructor(private current: Date) {}
  now(): Date {
    return new Date(this.current.getTime());
  }
  set(d: Date): void {
    this.current = new Date(d.getTime());
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

const CHINA_OFFSET_MS = 8 * 3600 * 1000;

/** `YYYYMMDDhhmmss` in China time (UTC+8), the form UnionPay uses for txnTime. */
export function chinaTimestamp(d: Date): string {
  const c = new Date(d.getTime() + CHINA_OFFSET_MS);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    p(c.getUTCFullYear(), 4) +
    p(c.getUTCMonth() + 1) +
    p(c.getUTCDate()) +
    p(c.getUTCHours()) +
    p(c.getUTCMinutes()) +
    p(c.getUTCSeconds())
  );
}

/** Parses `YYYYMMDDhhmmss` China time back to an instant. */
export function parseChinaTimestamp(s: string): Date {
  if (!/^\d{14}$/.test(s)) throw new Error(`not a YYYYMMDDhhmmss timestamp: ${s}`);
  const n = (a: number, b: number) => Number(s.slice(a, b));
  return new Date(Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14)) - CHINA_OFFSET_MS);
}
