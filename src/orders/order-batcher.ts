/**
 * Rings up many orders in one transaction (see db/batch.ts for the gathering and the fallback, and
 * inventory/reservation-batcher.ts for the stock side). Plain rows and multi-row INSERTs: no entity
 * is read back on this path; the answer is built from what was written.
 */
import { EntityManager } from 'typeorm';
import { Db, Stmt, placeholders, rows, runAll, runAllAndCommit } from '../db/db';
import { Batcher, Outcome, multiRowInsert } from '../db/batch';
import { AnswerSlot, answerStatements } from '../http/idempotency';
import { AUDIT_COLUMNS, auditRow } from '../audit/audit.service';
import { DomainError, conflict, unprocessable } from '../shared/errors';
import { Coupon } from '../coupons/coupon.entity';
import { CouponDiscount, priceCoupon } from '../coupons/coupons.service';
import { newId } from '../shared/ids';
import { SkuKind } from '../inventory/sku.entity';
import { BatchGuardError, HoldRequest, allocate, holdStatements, lockStock } from '../inventory/reservation-batcher';
import { Order, OrderKind } from './order.entity';
import { OrderLine } from './order-line.entity';
import type { NewOrder, OrderView } from './orders.service';

export interface PendingOrder {
  input: NewOrder;
  actor: string;
  /** The request's Idempotency-Key answer, written in the batch's transaction with the order. */
  answer?: AnswerSlot;
}

export interface BatchSettings {
  enabled: boolean;
  maxSize: number;
  maxWaitMs: number;
  maxInFlight: number;
  /**
   * Seat-hold batches in flight at once (POS_SEAT_BATCH_IN_FLIGHT, default 1). A batch locks its
   * seats, and two batches of one on-sale nearly always share one, so a second batch would mostly
   * wait for the first; one at a time, the batches grow instead. Other processes wait on the locks.
   */
  seatMaxInFlight?: number;
}

/** POS_BATCH=off turns batching off (the one-order-per-transaction path); the rest tune it. */
export function batchSettingsFromEnv(kind: Db['kind'], env: NodeJS.ProcessEnv = process.env): BatchSettings {
  const num = (name: string, dflt: number, min: number, max: number) => {
    const v = Number(env[name]);
    return env[name] && Number.isInteger(v) && v >= min && v <= max ? v : dflt;
  };
  return {
    enabled: env.POS_BATCH !== 'off',
    maxSize: num('POS_BATCH_MAX', 128, 1, 1000),
    maxWaitMs: num('POS_BATCH_WAIT_MS', 2, 0, 100),
    // SQLite has one writer; on MySQL a second batch in flight overlaps its round trips with the first's commit.
    maxInFlight: kind === 'sqlite' ? 1 : num('POS_BATCH_IN_FLIGHT', 4, 1, 64),
    seatMaxInFlight: kind === 'sqlite' ? 1 : num('POS_SEAT_BATCH_IN_FLIGHT', 1, 1, 64),
  };
}

export type BatchObserver = (info: { name: string; size: number; seconds: number; fallback: boolean }) => void;

/** The columns the batch engines (orders here, seat holds) insert, one multi-row INSERT per table. */
export const ORDER_COLUMNS = [
  'id',
  'lane',
  'kind',
  'event_id',
  'status',
  'subtotal_fen',
  'discount_fen',
  'total_fen',
  'rounding_fen',
  'refunded_fen',
  'coupon_code',
  'coupon_use',
  'paid_fen',
  'overpaid_fen',
  'expires_at',
  'created_by',
  'created_at',
  'updated_at',
  'version',
];
export const LINE_COLUMNS = [
  'id',
  'order_id',
  'line_no',
  'sku',
  'qty',
  'unit_price_fen',
  'list_price_fen',
  'discount_fen',
  'returned_qty',
  'reservation',
  'ended_at',
];

type CouponRow = Pick<
  Coupon,
  | 'kind'
  | 'amountFen'
  | 'percentBp'
  | 'minSubtotalFen'
  | 'skus'
  | 'validFrom'
  | 'validTo'
  | 'maxUses'
  | 'used'
  | 'reserved'
>;
const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));
function couponRow(c: Record<string, unknown>): CouponRow {
  return {
    kind: c.kind as Coupon['kind'],
    amountFen: numOrNull(c.amount_fen),
    percentBp: numOrNull(c.percent_bp),
    minSubtotalFen: numOrNull(c.min_subtotal_fen),
    skus: (c.skus as string | null) ?? null,
    validFrom: numOrNull(c.valid_from),
    validTo: numOrNull(c.valid_to),
    maxUses: numOrNull(c.max_uses),
    used: Number(c.used),
    reserved: Number(c.reserved),
  };
}

export function orderBatcher(deps: {
  db: Db;
  now(): number;
  defaultHoldSeconds: number;
  /** The largest total a terminal can carry (orders.service's MAX_ORDER_FEN). */
  maxOrderFen: number;
  settings: BatchSettings;
  applyOne(p: PendingOrder): Promise<OrderView>;
  toView(order: Order, lines: OrderLine[]): OrderView;
  observe?: BatchObserver;
}): Batcher<PendingOrder, OrderView> {
  const { db, settings } = deps;
  return new Batcher<PendingOrder, OrderView>({
    name: 'orders',
    maxSize: settings.maxSize,
    maxWaitMs: settings.maxWaitMs,
    maxInFlight: settings.maxInFlight,
    applyOne: deps.applyOne,
    onBatch: (info) => deps.observe?.(info),
    // First optimistically: a plain read of the stock, the ledger rows, and only then the guarded
    // UPDATEs, so a hot SKU is locked from its UPDATE to the commit and no longer. If a guard does not
    // hold (another process reserved meanwhile), that transaction rolls back and the batch runs again
    // with the rows locked first (SELECT … FOR UPDATE), where memory and the database cannot disagree.
    applyBatch: async (pending) => {
      try {
        return await db.tx((m) => apply(m, pending, ''));
      } catch (err) {
        if (!(err instanceof BatchGuardError)) throw err;
        return db.tx((m) => apply(m, pending, db.forUpdate));
      }
    },
  });

  async function apply(m: EntityManager, pending: PendingOrder[], lock: string): Promise<Outcome<OrderView>[]> {
    const now = deps.now();
    const requests: HoldRequest[] = pending.map((p) => {
      const orderId = newId();
      const skuKind: SkuKind = (p.input.kind ?? 'goods') === 'seats' ? 'seat' : 'goods';
      return {
        orderId,
        skuKind,
        actor: p.actor,
        lines: p.input.lines.map((l) => ({ lineId: newId(), sku: l.sku, qty: l.qty })),
      };
    });
    // Coupons before stock, as on the single path (coupon use, then the stock rows last).
    const codes = [...new Set(pending.map((p) => p.input.coupon).filter((c): c is string => !!c))].sort();
    const coupons = new Map<string, CouponRow>();
    if (codes.length) {
      const r = await rows<Record<string, unknown>>(
        m,
        `SELECT code, kind, amount_fen, percent_bp, min_subtotal_fen, skus, valid_from, valid_to, max_uses, used, reserved FROM coupon WHERE code IN (${placeholders(codes.length)}) ORDER BY code${lock}`,
        codes,
      );
      for (const c of r) coupons.set(String(c.code), couponRow(c));
    }
    const stock = await lockStock(
      m,
      requests.flatMap((r) => r.lines.map((l) => l.sku)),
      lock,
    );

    // Priced once the stock fits; a refusal here (total, coupon) consumes nothing of the order's stock.
    const priced: ({ lines: OrderLine[]; subtotalFen: number; discount: CouponDiscount | null } | null)[] = pending.map(
      () => null,
    );
    const usesTaken = new Map<string, number>();
    const { verdicts } = allocate(stock, requests, (i) => {
      const p = pending[i];
      const req = requests[i];
      const lines: OrderLine[] = req.lines.map((l, j) => {
        const list = stock.get(l.sku)!.priceFen;
        const asked = p.input.lines[j].unitPriceFen;
        const overridden = asked !== undefined && asked !== list;
        return Object.assign(new OrderLine(), {
          id: l.lineId,
          orderId: req.orderId,
          lineNo: j + 1,
          sku: l.sku,
          qty: l.qty,
          unitPriceFen: overridden ? asked : list,
          listPriceFen: overridden ? list : null,
          discountFen: 0,
          returnedQty: 0,
          reservation: 'active' as const,
          endedAt: null,
        });
      });
      const subtotalFen = lines.reduce((s, l) => s + l.qty * l.unitPriceFen, 0);
      if (!Number.isSafeInteger(subtotalFen) || subtotalFen > deps.maxOrderFen) {
        return unprocessable(
          'total_too_large',
          `the order total is more than ${deps.maxOrderFen} fen, which a terminal cannot charge`,
          { totalFen: subtotalFen },
        );
      }
      let discount: CouponDiscount | null = null;
      const code = p.input.coupon;
      if (code) {
        const c = coupons.get(code) ?? null;
        try {
          discount = priceCoupon(
            c,
            code,
            lines.map((l) => ({ lineNo: l.lineNo, sku: l.sku, amountFen: l.qty * l.unitPriceFen })),
            now,
          );
        } catch (err) {
          if (err instanceof DomainError) return err;
          throw err;
        }
        const taken = usesTaken.get(code) ?? 0;
        if (c!.maxUses !== null && c!.used + c!.reserved + taken >= c!.maxUses)
          return conflict('coupon_exhausted', `coupon ${code} has no uses left`, { code });
        usesTaken.set(code, taken + 1);
        for (const l of lines) l.discountFen = discount.byLine.get(l.lineNo) ?? 0;
      }
      priced[i] = { lines, subtotalFen, discount };
      return null;
    });

    const outcomes: Outcome<OrderView>[] = [];
    const answers: { slot: AnswerSlot; body: OrderView }[] = [];
    const accepted: HoldRequest[] = [];
    const orderRows: unknown[][] = [];
    const lineRows: unknown[][] = [];
    const auditRows: unknown[][] = [];
    pending.forEach((p, i) => {
      const v = verdicts[i];
      if (!v.ok) {
        outcomes.push({ ok: false, error: v.error });
        return;
      }
      const req = requests[i];
      const { lines, subtotalFen, discount } = priced[i]!;
      const kind: OrderKind = p.input.kind ?? 'goods';
      const discountFen = discount?.discountFen ?? 0;
      const totalFen = subtotalFen - discountFen;
      const order: Order = Object.assign(new Order(), {
        id: req.orderId,
        lane: p.input.lane,
        kind,
        eventId: p.input.eventId ?? null,
        status: 'reserved' as const,
        subtotalFen,
        discountFen,
        totalFen,
        roundingFen: 0,
        refundedFen: 0,
        couponCode: discount?.code ?? null,
        couponUse: discount ? ('reserved' as const) : null,
        paidFen: 0,
        overpaidFen: 0,
        expiresAt: now + (p.input.holdSeconds ?? deps.defaultHoldSeconds) * 1000,
        createdBy: p.actor,
        createdAt: now,
        updatedAt: now,
        version: 0,
      });
      accepted.push(req);
      orderRows.push([
        order.id,
        order.lane,
        order.kind,
        order.eventId,
        order.status,
        subtotalFen,
        discountFen,
        totalFen,
        0,
        0,
        order.couponCode,
        order.couponUse,
        0,
        0,
        order.expiresAt,
        p.actor,
        now,
        now,
        0,
      ]);
      for (const l of lines)
        lineRows.push([
          l.id,
          l.orderId,
          l.lineNo,
          l.sku,
          l.qty,
          l.unitPriceFen,
          l.listPriceFen,
          l.discountFen,
          0,
          'active',
          null,
        ]);
      auditRows.push(
        auditRow({
          actor: p.actor,
          entity: 'order',
          entityId: order.id,
          action: 'create',
          after: {
            status: 'reserved',
            subtotalFen,
            discountFen,
            totalFen,
            coupon: order.couponCode,
            lines: p.input.lines,
          },
          at: now,
        }),
      );
      for (const l of lines.filter((x) => x.listPriceFen !== null)) {
        auditRows.push(
          auditRow({
            actor: p.actor,
            entity: 'order_line',
            entityId: l.id,
            action: 'price_override',
            before: { orderId: order.id, lineNo: l.lineNo, sku: l.sku, unitPriceFen: l.listPriceFen },
            after: { orderId: order.id, lineNo: l.lineNo, sku: l.sku, unitPriceFen: l.unitPriceFen },
            at: now,
          }),
        );
      }
      const view = deps.toView(order, lines);
      if (p.answer) answers.push({ slot: p.answer, body: view });
      outcomes.push({ ok: true, value: view });
    });
    const totals = new Map<string, number>();
    for (const r of accepted) for (const l of r.lines) totals.set(l.sku, (totals.get(l.sku) ?? 0) + l.qty);

    // Every write of the batch in one round trip (db.runAll, or with the COMMIT: below), the contended rows
    // last: the keyed requests' answers commit with their orders (a retry after a crash replays, never
    // re-runs); then one guarded UPDATE per coupon with the batch's uses and one per SKU: the WHEREs stay
    // the guards.
    const writes: Stmt[] = [
      ...multiRowInsert('orders', ORDER_COLUMNS, orderRows),
      ...multiRowInsert('order_line', LINE_COLUMNS, lineRows),
      ...multiRowInsert('audit_log', AUDIT_COLUMNS, auditRows),
      ...answerStatements(answers),
      ...[...usesTaken]
        .sort((a, b) => (a[0] < b[0] ? -1 : 1))
        .map(([code, uses]) => ({
          sql: 'UPDATE coupon SET reserved = reserved + ?, updated_at = ? WHERE code = ? AND (max_uses IS NULL OR used + reserved + ? <= max_uses)',
          params: [uses, now, code, uses],
          guard: {
            rows: 1,
            error: () => new BatchGuardError(`batch of ${uses} uses of coupon ${code} found fewer left than its read`),
          },
        })),
      ...holdStatements(accepted, totals, now),
    ];
    // With no keyed answer and no coupon use in the batch, every guard in it is a stock row's, whose failure
    // is a BatchGuardError however runAllAndCommit reports it: the COMMIT then rides with the writes, one
    // round trip less per batch. Otherwise a failed guard must be told apart (an answer's is a 409 of its
    // own), so db.tx commits after the writes.
    if (answers.length === 0 && usesTaken.size === 0) await runAllAndCommit(m, writes);
    else await runAll(m, writes);
    return outcomes;
  }
}

export { DomainError };
