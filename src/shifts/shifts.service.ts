/**
 * Shifts (交班): a lane's drawer is opened with a counted float and closed with the counted cash.
 * The report adds up what the lane's tenders did between open and close (X: any time, live; Z: at
 * close, kept on the shift row and printed on the lane's printer). A lane has at most one open
 * shift: `open_lane` carries a unique index, so two tills racing to open cannot both win.
 */
import { EntityManager } from 'typeorm';
import { Db, exec, rows } from '../db/db';
import { audit } from '../audit/audit.service';
import { Clock } from '../shared/clock';
import { DomainError, conflict, notFound } from '../shared/errors';
import { newId } from '../shared/ids';
import { PrintQueue } from '../printer/print-queue';
import { clockPast } from './shift-lock';

export type ShiftStatus = 'open' | 'closed';

export interface ShiftView {
  id: string;
  lane: string;
  status: ShiftStatus;
  floatFen: number;
  countedCashFen: number | null;
  openedBy: string;
  openedAt: string;
  closedBy: string | null;
  closedAt: string | null;
}

export interface TenderTotals {
  count: number;
  fen: number;
}

export interface ShiftReport {
  kind: 'X' | 'Z';
  shiftId: string;
  lane: string;
  status: ShiftStatus;
  openedAt: string;
  closedAt: string | null;
  /** Where the report's window starts: the open, or just after the lane's previous close (money confirmed between shifts counts here). */
  countsFrom: string;
  generatedAt: string;
  floatFen: number;
  sales: { cash: TenderTotals; card: TenderTotals; totalFen: number };
  /** Money given back on this lane in the shift: card overpayments refunded at the terminal, and returns' refund legs when the returns tables exist. */
  refunds: { cash: TenderTotals; card: TenderTotals; totalFen: number; includesReturns: boolean };
  /** Card attempts on the lane in the shift whose outcome is not confirmed: not in the totals yet. */
  heldCardPayments: number;
  expectedCashFen: number;
  countedCashFen: number | null;
  overShortFen: number | null;
}

type ShiftRow = {
  id: string;
  lane: string;
  status: ShiftStatus;
  float_fen: unknown;
  counted_cash_fen: unknown;
  opened_by: string;
  opened_at: unknown;
  closed_by: string | null;
  closed_at: unknown;
  z_report: string | null;
};

/** A kept Z report; one kept before `countsFrom` existed counted from its open. */
function keptZ(json: string): ShiftReport {
  const r = JSON.parse(json) as ShiftReport;
  return r.countsFrom ? r : { ...r, countsFrom: r.openedAt };
}

const iso = (t: unknown) => (t == null ? null : new Date(Number(t)).toISOString());
const toView = (r: ShiftRow): ShiftView => ({
  id: r.id,
  lane: r.lane,
  status: r.status,
  floatFen: Number(r.float_fen),
  countedCashFen: r.counted_cash_fen == null ? null : Number(r.counted_cash_fen),
  openedBy: r.opened_by,
  openedAt: iso(r.opened_at)!,
  closedBy: r.closed_by,
  closedAt: iso(r.closed_at),
});

function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; driverError?: { code?: string; errno?: number } };
  const code = e.code ?? e.driverError?.code ?? '';
  return (e.errno ?? e.driverError?.errno) === 1062 || code.startsWith('SQLITE_CONSTRAINT');
}

export class ShiftsService {
  private returnsTables: boolean | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly printQueue: PrintQueue,
  ) {}

  /**
   * Whether the returns work (refund_leg) is in this database. The shift report counts its refund
   * legs when it is, and says `includesReturns: false` when it is not.
   */
  private async hasReturns(m: EntityManager): Promise<boolean> {
    if (this.returnsTables === null) {
      // With the caller's manager: on SQLite a separate read would queue behind this very transaction.
      const sql =
        this.db.kind === 'sqlite'
          ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'refund_leg'"
          : "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'refund_leg'";
      this.returnsTables = (await rows(m, sql)).length > 0;
    }
    return this.returnsTables;
  }

  async open(input: { lane: string; floatFen: number }, actor: string): Promise<ShiftView> {
    const id = newId();
    try {
      await this.db.tx(async (m) => {
        const open = await rows<{ id: string }>(m, 'SELECT id FROM shift WHERE open_lane = ?', [input.lane]);
        if (open.length)
          throw conflict('shift_already_open', `lane ${input.lane} already has an open shift; close it first`, {
            shiftId: open[0].id,
          });
        // Read after the lane's last close is seen committed: that close waited for the clock to pass its
        // closed_at (shift-lock.ts), so the two windows cannot share a millisecond.
        const now = this.clock.now().getTime();
        await exec(
          m,
          `INSERT INTO shift (id, lane, open_lane, status, float_fen, opened_by, opened_at) VALUES (?, ?, ?, 'open', ?, ?, ?)`,
          [id, input.lane, input.lane, input.floatFen, actor, now],
        );
        await audit(m, {
          actor,
          entity: 'shift',
          entityId: id,
          action: 'open',
          after: { lane: input.lane, floatFen: input.floatFen },
          at: now,
        });
      });
    } catch (err) {
      if (err instanceof DomainError || !isDuplicateKey(err)) throw err;
      throw conflict('shift_already_open', `lane ${input.lane} already has an open shift; close it first`);
    }
    return this.get(id);
  }

  /** Closes the shift and keeps its Z report; the report is queued for the lane's printer in the same transaction. */
  async close(id: string, countedCashFen: number, actor: string, boundLane: string | null): Promise<ShiftReport> {
    return this.db
      .tx(async (m) => {
        // The row first, exclusively, and by the path the sales lock it (the open_lane index, then the row): a
        // sale that holds its share lock commits before the clock is read below, one that asks after waits for
        // this close (shift-lock.ts). Locked by id, the close would hold the row and then wait for the index
        // entry a waiting sale holds: a deadlock.
        const seen = await this.rowIn(m, id);
        const [open] = await rows<ShiftRow>(m, `SELECT * FROM shift WHERE open_lane = ?${this.db.forUpdate}`, [
          seen.lane,
        ]);
        if (boundLane && boundLane !== seen.lane)
          throw new DomainError(403, 'lane_mismatch', `this key is for lane ${boundLane}, not ${seen.lane}`);
        // Not the lane's open shift: closed (the only other status), whatever `seen` said a moment ago.
        if (open?.id !== id) throw conflict('shift_not_open', `shift ${id} is already closed`, { status: 'closed' });
        const s = open;
        const now = this.clock.now().getTime();
        const report = await this.reportIn(
          m,
          { ...s, status: 'closed', closed_at: now, counted_cash_fen: countedCashFen },
          now,
        );
        const n = await exec(
          m,
          `UPDATE shift SET status = 'closed', open_lane = NULL, counted_cash_fen = ?, closed_by = ?, closed_at = ?, z_report = ? WHERE id = ? AND status = 'open'`,
          [countedCashFen, actor, now, JSON.stringify(report), id],
        );
        if (n !== 1) throw conflict('shift_not_open', `shift ${id} is already closed`, { status: s.status });
        await audit(m, {
          actor,
          entity: 'shift',
          entityId: id,
          action: 'close',
          before: { status: 'open' },
          after: {
            status: 'closed',
            countedCashFen,
            expectedCashFen: report.expectedCashFen,
            overShortFen: report.overShortFen,
          },
          at: now,
        });
        await this.printQueue.enqueueIn(m, { lane: s.lane, kind: 'z_report', shiftId: id, actor }, now);
        await clockPast(() => this.clock.now().getTime(), now);
        return report;
      })
      .then((r) => {
        this.printQueue.poke();
        return r;
      });
  }

  async get(id: string): Promise<ShiftView> {
    return toView(await this.db.read((m) => this.rowIn(m, id)));
  }

  /** X while open (live figures), the kept Z once closed. */
  async report(id: string, boundLane: string | null): Promise<ShiftReport> {
    return this.db.read(async (m) => {
      const s = await this.rowIn(m, id);
      if (boundLane && boundLane !== s.lane)
        throw new DomainError(403, 'lane_mismatch', `this key is for lane ${boundLane}, not ${s.lane}`);
      if (s.status === 'closed' && s.z_report) return keptZ(s.z_report);
      return this.reportIn(m, s, this.clock.now().getTime());
    });
  }

  /** The stored Z report (for printing). */
  async zReport(id: string): Promise<ShiftReport> {
    const s = await this.db.read((m) => this.rowIn(m, id));
    if (!s.z_report) throw conflict('shift_not_closed', `shift ${id} has no Z report yet`);
    return keptZ(s.z_report);
  }

  async list(q: {
    lane?: string;
    status?: ShiftStatus;
    from?: number;
    to?: number;
    limit: number;
    offset: number;
  }): Promise<{ items: ShiftView[]; total: number; limit: number; offset: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.lane) {
      where.push('lane = ?');
      params.push(q.lane);
    }
    if (q.status) {
      where.push('status = ?');
      params.push(q.status);
    }
    if (q.from !== undefined) {
      where.push('opened_at >= ?');
      params.push(q.from);
    }
    if (q.to !== undefined) {
      where.push('opened_at < ?');
      params.push(q.to);
    }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    return this.db.read(async (m) => {
      const [{ n }] = await rows<{ n: unknown }>(m, `SELECT COUNT(*) AS n FROM shift ${w}`, params);
      const found = await rows<ShiftRow>(
        m,
        `SELECT * FROM shift ${w} ORDER BY opened_at DESC, id LIMIT ${Number(q.limit)} OFFSET ${Number(q.offset)}`,
        params,
      );
      return { items: found.map(toView), total: Number(n), limit: q.limit, offset: q.offset };
    });
  }

  /** With POS_SHIFTS=on: the lane takes no new order or tender without an open shift. */
  async requireOpen(lane: string): Promise<void> {
    const open = await this.db.read((m) => rows(m, 'SELECT id FROM shift WHERE open_lane = ?', [lane]));
    if (!open.length)
      throw conflict('no_open_shift', `lane ${lane} has no open shift; open one with POST /v1/shifts`, { lane });
  }

  private async rowIn(m: EntityManager, id: string): Promise<ShiftRow> {
    const [r] = await rows<ShiftRow>(m, 'SELECT * FROM shift WHERE id = ?', [id]);
    if (!r) throw notFound('shift', id);
    return r;
  }

  /**
   * Tenders on the lane that were confirmed in [from, closed or now], both ends counted (shift-lock.ts).
   * `from` is the shift's open, or just after the lane's previous close when there was one: money
   * confirmed on the lane while no shift was open (a card the terminal or the sweeper approved after a
   * close, a refund the sweeper finished then) counts in the next shift instead of in none. The
   * windows of a lane's shifts so cover its time from its first open without a gap or an overlap.
   */
  private async reportIn(m: EntityManager, s: ShiftRow, now: number): Promise<ShiftReport> {
    const openedAt = Number(s.opened_at);
    // The lane's shift before this one (they never overlap: one open at a time), by the (lane, opened_at) index.
    const [prev] = await rows<{ t: unknown }>(
      m,
      'SELECT closed_at AS t FROM shift WHERE lane = ? AND opened_at < ? ORDER BY opened_at DESC LIMIT 1',
      [s.lane, openedAt],
    );
    const from = prev?.t == null ? openedAt : Number(prev.t) + 1;
    const until = (s.closed_at == null ? now : Number(s.closed_at)) + 1;
    const sales = await rows<{ method: string; n: unknown; fen: unknown }>(
      m,
      `SELECT method, COUNT(*) AS n, SUM(amount_fen) AS fen FROM payment
        WHERE lane = ? AND status = 'approved' AND finished_at >= ? AND finished_at < ? GROUP BY method`,
      [s.lane, from, until],
    );
    // Card overpayments given back at the terminal…
    const refunds = await rows<{ method: string; n: unknown; fen: unknown }>(
      m,
      `SELECT method, COUNT(*) AS n, SUM(refund_fen) AS fen FROM payment
        WHERE lane = ? AND refund_state = 'done' AND updated_at >= ? AND updated_at < ? GROUP BY method`,
      [s.lane, from, until],
    );
    // …and the refund legs of returns: money back in cash (a cash leg, or a card leg paid out in cash) or to the card.
    // A leg belongs to the lane of the tender it refunds.
    const includesReturns = await this.hasReturns(m);
    if (includesReturns) {
      refunds.push(
        ...(await rows<{ method: string; n: unknown; fen: unknown }>(
          m,
          `SELECT CASE WHEN status = 'paid_in_cash' THEN 'cash' ELSE method END AS method, COUNT(*) AS n, SUM(amount_fen) AS fen FROM refund_leg
          WHERE lane = ? AND (status = 'approved' OR status = 'paid_in_cash') AND finished_at >= ? AND finished_at < ?
          GROUP BY CASE WHEN status = 'paid_in_cash' THEN 'cash' ELSE method END`,
          [s.lane, from, until],
        )),
      );
    }
    const [held] = await rows<{ n: unknown }>(
      m,
      `SELECT COUNT(*) AS n FROM payment WHERE lane = ? AND method = 'card' AND status IN ('pending', 'unknown', 'suspense') AND created_at >= ? AND created_at < ?`,
      [s.lane, from, until],
    );
    const pick = (list: { method: string; n: unknown; fen: unknown }[], method: string): TenderTotals => {
      const hits = list.filter((x) => x.method === method);
      return {
        count: hits.reduce((a, r) => a + Number(r.n ?? 0), 0),
        fen: hits.reduce((a, r) => a + Number(r.fen ?? 0), 0),
      };
    };
    const sale = { cash: pick(sales, 'cash'), card: pick(sales, 'card') };
    const back = { cash: pick(refunds, 'cash'), card: pick(refunds, 'card') };
    const floatFen = Number(s.float_fen);
    const expectedCashFen = floatFen + sale.cash.fen - back.cash.fen;
    const counted = s.counted_cash_fen == null ? null : Number(s.counted_cash_fen);
    return {
      kind: s.status === 'closed' ? 'Z' : 'X',
      shiftId: s.id,
      lane: s.lane,
      status: s.status,
      openedAt: iso(openedAt)!,
      closedAt: iso(s.closed_at),
      countsFrom: iso(from)!,
      generatedAt: new Date(now).toISOString(),
      floatFen,
      sales: { ...sale, totalFen: sale.cash.fen + sale.card.fen },
      refunds: { ...back, totalFen: back.cash.fen + back.card.fen, includesReturns },
      heldCardPayments: Number(held?.n ?? 0),
      expectedCashFen,
      countedCashFen: counted,
      overShortFen: counted == null ? null : counted - expectedCashFen,
    };
  }
}
