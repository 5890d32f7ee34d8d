/**
 * Seat holds in batches (issue 15, `bench:seats`). An on-sale sends hundreds of hold requests a
 * second for the same few thousand seats, most of them for seats somebody already has. Concurrent
 * requests are gathered (db/batch.ts) and decided together:
 *
 *  1. one transaction that first reads every seat SKU the batch names (price, on hand, reserved) with
 *     the rows locked in sorted order (SELECT … FOR UPDATE; SQLite: the one writer);
 *  2. each request in arrival order, in memory, all or nothing: a request for a taken seat is
 *     refused (409 seat_unavailable) without failing its neighbours; a batch in which nobody gets
 *     a seat writes nothing;
 *  3. for the granted ones, in the same transaction: multi-row INSERTs of the orders, their lines,
 *     the reservation movements and the audit rows, then ONE guarded UPDATE of all the batch's
 *     seats (`reserved = reserved + 1 … WHERE sku IN (…) AND on_hand - reserved >= 1`). The rows are
 *     locked, so the guard cannot find a seat taken; it stays as the last word (on Galera another
 *     node's write shows up as a certification failure at commit, and the transaction runs again).
 *
 * The seats are locked from the read on, not read plainly and guarded at the write: with several
 * processes on one database (`serve --workers N`), two batches nearly always share a seat, and an
 * optimistic batch whose guard failed had to roll back and run again, locked, while its callers
 * waited. `BENCH_WORKERS=2 npm run bench:seats`, three alternating pairs of runs (2026-12-06): p99
 * 53 / 64 / 70 ms and max 70–104 ms locked, against 64 / 71 / 84 and 103–140 optimistic. With one
 * process no difference showed.
 *
 * Once the seats are gone, a locked batch is mostly waste: it takes every asked seat's lock to refuse
 * every hold, and with two processes each batch waits for the other's. So once a locked batch for an
 * event granted nothing, the next batches for it read their seats plainly (committed state, no
 * transaction, one round trip): a hold naming a seat taken at that read is refused there, which is
 * true at that moment; only the holds whose seats all looked free go through the locked path above.
 * A locked batch that grants sends its events' next batches straight to the locks again, and an
 * event with no batch yet (an on-sale that has just opened) starts there: no extra round trip.
 * `npm run bench:seats` with `--workers 2` (2026-12-06): p50 34–36 ms in three runs against 45–46 in
 * two before; a batch took 15–20 ms on average against 24–27.
 *
 * Nothing is answered before its commit; the answers are built from what was written, not re-read.
 * The rows written are exactly those of the order engine (orders, order_line, stock_movement,
 * audit_log), so payment, expiry, the sweeper and `pos check` see an ordinary seat order.
 */
import { EntityManager } from 'typeorm';
import { Db, Stmt, placeholders, rows, runAllAndCommit } from '../db/db';
import { Batcher, Outcome, multiRowInsert } from '../db/batch';
import { BatchSettings, BatchObserver, LINE_COLUMNS, ORDER_COLUMNS } from '../orders/order-batcher';
import { AUDIT_COLUMNS, auditRow } from '../audit/audit.service';
import { BatchGuardError, MOVEMENT_COLUMNS } from '../inventory/reservation-batcher';
import { conflict } from '../shared/errors';
import { newId } from '../shared/ids';
import type { OrderView } from '../orders/orders.service';

export interface HoldInput {
  eventId: string;
  /** Distinct, known seats of the event (checked before the request is queued). */
  seatIds: string[];
  ttlSeconds: number;
  lane: string;
  actor: string;
}
export type HoldView = OrderView & { seats: string[] };

interface SeatStock {
  priceFen: number;
  available: number;
}

/** Counters for the bench and the tests: how the batches went. */
export interface HoldBatchStats {
  batches: number;
  requests: number;
  granted: number;
  /** Batches that wrote nothing (every request refused). */
  readOnly: number;
  /** Of those, the ones decided by a plain read, with no transaction and no lock. */
  unlocked: number;
  /** Round trips to the database (a multi-statement write is one), transaction control included. */
  statements: number;
}

export function holdBatcher(deps: {
  db: Db;
  now(): number;
  settings: BatchSettings;
  seatSku(eventId: string, seatId: string): string;
  applyOne(h: HoldInput): Promise<HoldView>;
  observe?: BatchObserver;
}): { batcher: Batcher<HoldInput, HoldView>; stats: HoldBatchStats } {
  const { db, settings } = deps;
  const stats: HoldBatchStats = { batches: 0, requests: 0, granted: 0, readOnly: 0, unlocked: 0, statements: 0 };
  /**
   * The events whose last locked batch granted nothing (most recently decided last; at most 64). An
   * event not here, such as one whose on-sale has just opened, goes straight to the locks.
   */
  const soldOut = new Set<string>();
  const batcher = new Batcher<HoldInput, HoldView>({
    name: 'seat_holds',
    maxSize: settings.maxSize,
    maxWaitMs: settings.maxWaitMs,
    maxInFlight: settings.maxInFlight,
    applyOne: deps.applyOne,
    onBatch: (info) => deps.observe?.(info),
    applyBatch: async (holds) => {
      stats.batches++;
      stats.requests += holds.length;
      const outcomes: Outcome<HoldView>[] = new Array(holds.length);
      let open = holds.map((_, i) => i); // the holds still to decide, by index
      if (holds.every((h) => soldOut.has(h.eventId))) {
        // The last locked batch for each of these events granted nothing: its seats were gone, and in a
        // sold-out on-sale so are most of these. A plain read of the committed seats refuses every hold
        // that names a taken one (it was taken at that moment), with no transaction and no lock; only
        // the rest go on to the locked path.
        const stock = await db.read((m) => readStock(m, skusOf(holds), ''));
        open = [];
        holds.forEach((h, i) => {
          const taken = takenSeats(h, stock);
          if (taken.length) outcomes[i] = refusal(taken);
          else open.push(i);
        });
        if (open.length === 0) {
          stats.readOnly++;
          stats.unlocked++;
          return outcomes;
        }
      }
      const asked = open.map((i) => holds[i]);
      const d = await db.tx(async (m) => {
        const decided = await decide(m, asked);
        if (decided.granted.length) await write(m, decided.granted, decided.now);
        return decided;
      });
      // START TRANSACTION rides with the locked read and, when the batch wrote, COMMIT with the write
      // (db.runAllAndCommit); without multi-statements each is a round trip of its own.
      stats.statements += db.multiStatements ? (d.granted.length ? 0 : 1) : 2;
      d.outcomes.forEach((o, j) => (outcomes[open[j]] = o));
      stats.granted += d.granted.length;
      const events = new Set(asked.map((h) => h.eventId));
      for (const e of events) soldOut.delete(e);
      if (d.granted.length === 0) {
        stats.readOnly++;
        for (const e of events) soldOut.add(e);
        while (soldOut.size > 64) soldOut.delete(soldOut.values().next().value!);
      }
      return outcomes;
    },
  });
  return { batcher, stats };

  interface Granted {
    hold: HoldInput;
    orderId: string;
    skus: string[];
    lineIds: string[];
    prices: number[];
    expiresAt: number;
  }

  async function decide(
    m: EntityManager,
    holds: HoldInput[],
  ): Promise<{ outcomes: Outcome<HoldView>[]; granted: Granted[]; now: number }> {
    const stock = await readStock(m, skusOf(holds), db.forUpdate);
    const now = deps.now();
    const granted: Granted[] = [];
    const outcomes = holds.map((h): Outcome<HoldView> => {
      const hs = h.seatIds.map((s) => deps.seatSku(h.eventId, s));
      const taken = takenSeats(h, stock);
      if (taken.length) return refusal(taken);
      for (const sku of hs) stock.get(sku)!.available -= 1;
      const g: Granted = {
        hold: h,
        orderId: newId(),
        skus: hs,
        lineIds: hs.map(() => newId()),
        prices: hs.map((sku) => stock.get(sku)!.priceFen),
        expiresAt: now + h.ttlSeconds * 1000,
      };
      granted.push(g);
      return { ok: true, value: view(g, now) };
    });
    return { outcomes, granted, now };
  }

  function skusOf(holds: HoldInput[]): string[] {
    return [...new Set(holds.flatMap((h) => h.seatIds.map((s) => deps.seatSku(h.eventId, s))))].sort();
  }

  /** Price and what is free of each seat SKU; `lock` is db.forUpdate (rows locked in sorted order) or ''. */
  async function readStock(m: EntityManager, skus: string[], lock: string): Promise<Map<string, SeatStock>> {
    const stock = new Map<string, SeatStock>();
    for (let i = 0; i < skus.length; i += 500) {
      const chunk = skus.slice(i, i + 500);
      stats.statements++;
      const r = await rows<{ sku: string; price_fen: unknown; on_hand: unknown; reserved: unknown }>(
        m,
        `SELECT sku, price_fen, on_hand, reserved FROM sku WHERE sku IN (${placeholders(chunk.length)}) AND kind = 'seat' ORDER BY sku${lock}`,
        chunk,
      );
      for (const x of r)
        stock.set(x.sku, { priceFen: Number(x.price_fen), available: Number(x.on_hand) - Number(x.reserved) });
    }
    return stock;
  }

  /** The hold's seats that `stock` has as taken (or does not have). */
  function takenSeats(h: HoldInput, stock: Map<string, SeatStock>): string[] {
    return h.seatIds.filter((s) => (stock.get(deps.seatSku(h.eventId, s))?.available ?? 0) < 1);
  }

  function refusal(taken: string[]): Outcome<HoldView> {
    return {
      ok: false,
      error: conflict('seat_unavailable', `seats already held or sold: ${taken.join(', ')}`, { seats: taken }),
    };
  }

  async function write(m: EntityManager, granted: Granted[], now: number): Promise<void> {
    const orderRows: unknown[][] = [];
    const lineRows: unknown[][] = [];
    const movementRows: unknown[][] = [];
    const auditRows: unknown[][] = [];
    const seatSkus: string[] = [];
    for (const g of granted) {
      const total = g.prices.reduce((a, b) => a + b, 0);
      orderRows.push([
        g.orderId,
        g.hold.lane,
        'seats',
        g.hold.eventId,
        'reserved',
        total,
        0,
        total,
        0,
        0,
        null,
        null,
        0,
        0,
        g.expiresAt,
        g.hold.actor,
        now,
        now,
        0,
      ]);
      g.skus.forEach((sku, j) => {
        lineRows.push([g.lineIds[j], g.orderId, j + 1, sku, 1, g.prices[j], null, 0, 0, 'active', null]);
        seatSkus.push(sku);
      });
      // Movements per order in SKU order, as the order engine writes them.
      g.skus
        .map((sku, j) => ({ sku, lineId: g.lineIds[j] }))
        .sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0))
        .forEach((l) => movementRows.push([l.sku, 'reservation', 0, 1, g.orderId, l.lineId, null, g.hold.actor, now]));
      auditRows.push(
        auditRow({
          actor: g.hold.actor,
          entity: 'order',
          entityId: g.orderId,
          action: 'create',
          after: {
            status: 'reserved',
            subtotalFen: total,
            discountFen: 0,
            totalFen: total,
            coupon: null,
            lines: g.skus.map((sku) => ({ sku, qty: 1 })),
          },
          at: now,
        }),
      );
    }
    // Last, so the seat rows are locked from there to the commit only: one guarded UPDATE for all the
    // batch's seats (each granted once: the allocation above never gives a seat to two requests).
    // Everything in one round trip with the COMMIT (db.runAllAndCommit).
    seatSkus.sort();
    const guards: Stmt[] = [];
    for (let i = 0; i < seatSkus.length; i += 500) {
      const chunk = seatSkus.slice(i, i + 500);
      guards.push({
        sql: `UPDATE sku SET reserved = reserved + 1, updated_at = ? WHERE sku IN (${placeholders(chunk.length)}) AND on_hand - reserved >= 1`,
        params: [now, ...chunk],
        guard: {
          rows: chunk.length,
          error: () => new BatchGuardError(`batch hold of ${chunk.length} seats found some taken since its read`),
        },
      });
    }
    stats.statements++;
    await runAllAndCommit(m, [
      ...multiRowInsert('orders', ORDER_COLUMNS, orderRows),
      ...multiRowInsert('order_line', LINE_COLUMNS, lineRows),
      ...multiRowInsert('stock_movement', MOVEMENT_COLUMNS, movementRows),
      ...multiRowInsert('audit_log', AUDIT_COLUMNS, auditRows),
      ...guards,
    ]);
  }

  function view(g: Granted, now: number): HoldView {
    const total = g.prices.reduce((a, b) => a + b, 0);
    return {
      id: g.orderId,
      lane: g.hold.lane,
      kind: 'seats',
      eventId: g.hold.eventId,
      status: 'reserved',
      coupon: null,
      subtotalFen: total,
      discountFen: 0,
      totalFen: total,
      roundingFen: 0,
      paidFen: 0,
      overpaidFen: 0,
      refundedFen: 0,
      expiresAt: new Date(g.expiresAt).toISOString(),
      createdAt: new Date(now).toISOString(),
      lines: g.skus.map((sku, j) => ({
        lineNo: j + 1,
        sku,
        qty: 1,
        unitPriceFen: g.prices[j],
        amountFen: g.prices[j],
        discountFen: 0,
        netFen: g.prices[j],
        returnedQty: 0,
        reservation: 'active' as const,
      })),
      seats: g.hold.seatIds,
    };
  }
}
