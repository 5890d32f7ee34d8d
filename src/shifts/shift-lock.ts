/**
 * With POS_SHIFTS=on, a shift's Z report must count every sale its lane confirmed while it was open,
 * and a sale must count in one shift only. The report adds up money by its time (`finished_at`) in
 * the shift's window [opened_at, closed_at], so the two sides keep a protocol on the shift row:
 *
 *  - a transaction that confirms money on a lane (a cash tender, a card approval) share-locks the
 *    lane's open shift row first (`openShiftsStatement`), and reads the clock for the money's time
 *    only after that lock is granted;
 *  - a close locks the row exclusively, then reads the clock as `closed_at`, builds the report, and
 *    commits only once the clock has passed `closed_at` (`clockPast`).
 *
 * A sale that holds the lock first commits before the close reads its clock: its time is inside the
 * window and its row is visible to the report. A sale that asks after the close has the lock waits
 * for the close's commit; it then finds no open shift (a cash tender is refused, 409 no_open_shift)
 * or the next one, and its time is after `closed_at`. Before, nothing ordered the two: a cash sale
 * committing while its shift closed was stamped inside the window, after the report had been read,
 * and so was left off every Z report.
 *
 * SQLite runs one transaction at a time, so the race does not arise there and the statement locks
 * nothing. On Galera a lock is local to its node, so there a money transaction also writes the open
 * shift's row (`money_seq + 1`, before it reads the clock): a close and a sale of one lane on two nodes
 * then write the same row, and certification lets only the first to commit through. The other fails
 * (1213) and runs again (db.tx): a sale again after the close finds no open shift (cash is refused, a
 * card's time falls after the close and counts in the next shift); a close again after the sale counts
 * it. Before, the two were not ordered there (docs/scale-out.md).
 */
import { EntityManager } from 'typeorm';
import { Db, Stmt, placeholders, runAll } from '../db/db';
import { conflict } from '../shared/errors';

/**
 * Share-locks the open shifts of these lanes (in lane order); the last statement returns their lanes
 * (`open_lane`). On Galera the rows are written first (`money_seq + 1`), see above.
 */
export function openShiftsStatements(db: Db, lanes: string[]): Stmt[] {
  const sorted = [...new Set(lanes)].sort();
  const inLanes = `open_lane IN (${placeholders(sorted.length)})`;
  return [
    ...(db.galera ? [{ sql: `UPDATE shift SET money_seq = money_seq + 1 WHERE ${inLanes}`, params: sorted }] : []),
    {
      // `status` is not in the open_lane index: InnoDB then locks the row itself, which the close locks by its
      // id. Read from the index alone, the share lock would cover the index entry only and let a close pass.
      sql: `SELECT open_lane, status FROM shift WHERE ${inLanes} ORDER BY open_lane${db.forShare}`,
      params: sorted,
    },
  ];
}

/** The lanes with an open shift among the rows the last of `openShiftsStatements` read. */
export const openLanesOf = (found: Record<string, unknown>[]): Set<string> =>
  new Set(found.map((r) => String(r.open_lane)));

/** Runs `openShiftsStatements` in `m`'s transaction: the lanes' open shifts locked, their lanes returned. */
export async function lockOpenShifts(m: EntityManager, db: Db, lanes: string[]): Promise<Set<string>> {
  const results = await runAll(m, openShiftsStatements(db, lanes));
  return openLanesOf(results[results.length - 1].rows);
}

/**
 * The time to stamp on money confirmed on these lanes in `m`'s transaction (PaymentsService.moneyTime):
 * read after their open shifts are share-locked when shifts are on. Returns, refund legs, the sweeper's
 * refunds and the settle batch are handed one.
 */
export type MoneyTime = (m: EntityManager, lanes: (string | null)[]) => Promise<number>;

export const noOpenShift = (lane: string) =>
  conflict('no_open_shift', `lane ${lane} has no open shift; open one with POST /v1/shifts`, { lane });

/**
 * Waits (at most `capMs` of real time) until `now()` is past `t`: a close commits only then, so a
 * money transaction that reads the clock after the close's commit stamps a later time than
 * `closed_at`. Bounded because a test's clock may stand still.
 */
export async function clockPast(now: () => number, t: number, capMs = 5): Promise<void> {
  const until = Date.now() + capMs;
  while (now() <= t && Date.now() < until) await new Promise((r) => setTimeout(r, 1));
}
