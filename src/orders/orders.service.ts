import { EntityManager, In } from 'typeorm';
import { Db, exec, placeholders, rows } from '../db/db';
import { audit } from '../audit/audit.service';
import { Clock } from '../shared/clock';
import { DomainError, conflict, notFound, unprocessable } from '../shared/errors';
import { newId } from '../shared/ids';
import { InventoryService, InsufficientStockError } from '../inventory/inventory.service';
import { SkuKind } from '../inventory/sku.entity';
import { Payment } from '../payments/payment.entity';
import { LIVE_PAYMENT_STATUSES } from '../payments/payment-state';
import { owedFenOf } from '../payments/evidence';
import { Order, OrderKind } from './order.entity';
import { OrderLine } from './order-line.entity';
import { moveOrder } from './order-state';
import { CouponDiscount, CouponsService } from '../coupons/coupons.service';
import { roundDownToJiao } from '../coupons/split';
import { Batcher } from '../db/batch';
import { AnswerSlot, answerCommitted, storeAnswers } from '../http/idempotency';
import { BatchObserver, BatchSettings, PendingOrder, batchSettingsFromEnv, orderBatcher } from './order-batcher';

export interface NewOrder {
  lane: string;
  /** unitPriceFen is a supervisor's price override (the route admits it only from a backoffice/admin key). */
  lines: { sku: string; qty: number; unitPriceFen?: number }[];
  coupon?: string;
  kind?: OrderKind;
  eventId?: string | null;
  holdSeconds?: number;
}

export interface OrderView {
  id: string;
  lane: string;
  kind: OrderKind;
  eventId: string | null;
  status: Order['status'];
  coupon: string | null;
  subtotalFen: number;
  discountFen: number;
  totalFen: number;
  roundingFen: number;
  paidFen: number;
  overpaidFen: number;
  refundedFen: number;
  expiresAt: string;
  createdAt: string;
  lines: {
    lineNo: number;
    sku: string;
    qty: number;
    unitPriceFen: number;
    listPriceFen?: number;
    amountFen: number;
    discountFen: number;
    netFen: number;
    returnedQty: number;
    reservation: OrderLine['reservation'];
  }[];
  payments?: unknown[];
  returns?: unknown[];
}

export type CashRounding = 'off' | 'jiao';

/**
 * What returns give the orders capability: refund legs for a cancelled order's approved tenders
 * (written in the cancel's transaction, driven after it commits) and the returns shown on an order.
 */
export interface OrderRefunder {
  refundCancelledIn(m: EntityManager, order: Order, actor: string, now: number): Promise<string | null>;
  drive(returnId: string): Promise<void>;
  returnsOf(m: EntityManager, orderId: string): Promise<unknown[]>;
}

/** The largest amount a terminal's 12-digit AM field carries. */
export const MAX_ORDER_FEN = 999_999_999_999;

export interface OrderListQuery {
  lane?: string;
  status?: Order['status'];
  from?: number;
  to?: number;
  cursor?: string;
  limit: number;
}

/** Statuses for which an order's hold outlives its expiry: the payment outcome is not confirmed yet. */
const LIVE_SQL = LIVE_PAYMENT_STATUSES.map((s) => `'${s}'`).join(', ');

export class OrdersService {
  readonly coupons: CouponsService;
  private refunder: OrderRefunder | null = null;
  private readonly batcher: Batcher<PendingOrder, OrderView> | null;
  private batchObserver: BatchObserver | undefined;

  constructor(
    private readonly db: Db,
    private readonly inventory: InventoryService,
    private readonly clock: Clock,
    private readonly defaultHoldSeconds: number,
    readonly cashRounding: CashRounding = 'off',
    batch: BatchSettings = batchSettingsFromEnv(db.kind),
  ) {
    this.coupons = new CouponsService(db, clock);
    this.batcher = batch.enabled
      ? orderBatcher({
          db,
          settings: batch,
          defaultHoldSeconds,
          toView,
          maxOrderFen: MAX_ORDER_FEN,
          now: () => this.clock.now().getTime(),
          applyOne: (p) => this.createOne(p.input, p.actor, p.answer),
          observe: (info) => this.batchObserver?.(info),
        })
      : null;
  }

  /** Sees every order batch (size, seconds, whether it fell back to one order at a time). */
  observeBatches(fn: BatchObserver): void {
    this.batchObserver = fn;
  }

  /** Resolves when no order batch is queued or in flight. */
  async idle(): Promise<void> {
    await this.batcher?.idle();
  }

  useRefunder(r: OrderRefunder): void {
    this.refunder = r;
  }

  /**
   * Rings up an order: prices the lines and reserves all of them, or nothing (409 insufficient_stock).
   * With `answer` (the request's Idempotency-Key), the answer is stored in the order's own transaction.
   */
  async create(input: NewOrder, actor: string, answer?: AnswerSlot): Promise<OrderView> {
    const seen = new Set<string>();
    for (const l of input.lines) {
      if (seen.has(l.sku))
        throw unprocessable(
          'duplicate_line',
          `SKU ${l.sku} appears on more than one line; put the quantity on one line`,
          { sku: l.sku },
        );
      seen.add(l.sku);
    }
    // Batched: gathered with concurrent orders into one transaction, answered after its commit.
    const view = this.batcher
      ? await this.batcher.submit({ input, actor, answer })
      : await this.createOne(input, actor, answer);
    answerCommitted(answer);
    return view;
  }

  /** One order in its own transaction, with its stored answer when keyed (also the batch's fallback). */
  private createOne(input: NewOrder, actor: string, answer?: AnswerSlot): Promise<OrderView> {
    return this.db.tx(async (m) => {
      const view = await this.createIn(m, input, actor);
      if (answer) await storeAnswers(m, [{ slot: answer, body: view }]);
      return view;
    });
  }

  async createIn(m: EntityManager, input: NewOrder, actor: string): Promise<OrderView> {
    const now = this.clock.now().getTime();
    const kind: OrderKind = input.kind ?? 'goods';
    const skuKind: SkuKind = kind === 'seats' ? 'seat' : 'goods';
    const skus = input.lines.map((l) => l.sku);
    const priced = await rows<{
      sku: string;
      price_fen: string | number;
      on_hand: string | number;
      reserved: string | number;
    }>(
      m,
      `SELECT sku, price_fen, on_hand, reserved FROM sku WHERE kind = ? AND sku IN (${placeholders(skus.length)})`,
      [skuKind, ...skus],
    );
    const price = new Map(priced.map((p) => [p.sku, Number(p.price_fen)]));
    const unknown = skus.filter((s) => !price.has(s));
    if (unknown.length) throw unprocessable('unknown_sku', `unknown SKU: ${unknown.join(', ')}`, { skus: unknown });
    // Refuse at once what is plainly short (a plain read, no lock); the conditional UPDATE in reserve() stays the guard.
    const available = new Map(priced.map((p) => [p.sku, Number(p.on_hand) - Number(p.reserved)]));
    const plainlyShort = input.lines.filter((l) => available.get(l.sku)! < l.qty);
    if (plainlyShort.length) {
      throw new InsufficientStockError(
        plainlyShort.map((l) => ({ sku: l.sku, requested: l.qty, available: Math.max(0, available.get(l.sku)!) })),
      );
    }

    const orderId = newId();
    const lines: OrderLine[] = input.lines.map((l, i) => {
      const list = price.get(l.sku)!;
      const overridden = l.unitPriceFen !== undefined && l.unitPriceFen !== list;
      return Object.assign(new OrderLine(), {
        id: newId(),
        orderId,
        lineNo: i + 1,
        sku: l.sku,
        qty: l.qty,
        unitPriceFen: overridden ? l.unitPriceFen! : list,
        listPriceFen: overridden ? list : null,
        discountFen: 0,
        returnedQty: 0,
        reservation: 'active' as const,
        endedAt: null,
      });
    });
    const subtotalFen = lines.reduce((s, l) => s + l.qty * l.unitPriceFen, 0);
    // The terminal's AM field has 12 digits: a total it cannot carry is refused before anything is stored.
    if (!Number.isSafeInteger(subtotalFen) || subtotalFen > MAX_ORDER_FEN)
      throw unprocessable(
        'total_too_large',
        `the order total is more than ${MAX_ORDER_FEN} fen, which a terminal cannot charge`,
        { totalFen: subtotalFen },
      );
    let discount: CouponDiscount | null = null;
    if (input.coupon) {
      discount = await this.coupons.applyToOrder(
        m,
        input.coupon,
        lines.map((l) => ({ lineNo: l.lineNo, sku: l.sku, amountFen: l.qty * l.unitPriceFen })),
        now,
      );
      for (const l of lines) l.discountFen = discount.byLine.get(l.lineNo) ?? 0;
    }
    const discountFen = discount?.discountFen ?? 0;
    const totalFen = subtotalFen - discountFen;

    const order: Order = Object.assign(new Order(), {
      id: orderId,
      lane: input.lane,
      kind,
      eventId: input.eventId ?? null,
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
      expiresAt: now + (input.holdSeconds ?? this.defaultHoldSeconds) * 1000,
      createdBy: actor,
      createdAt: now,
      updatedAt: now,
      version: 0,
    });
    // Plain copies: TypeORM reloads defaulted columns into inserted entities, and on a multi-row insert
    // it can pair the reloaded rows with the wrong objects (a line's discount would land on another line).
    await m.insert(Order, { ...order });
    await m.insert(
      OrderLine,
      lines.map((l) => ({ ...l })),
    );
    await audit(m, {
      actor,
      entity: 'order',
      entityId: orderId,
      action: 'create',
      after: { status: 'reserved', subtotalFen, discountFen, totalFen, coupon: order.couponCode, lines: input.lines },
      at: now,
    });
    const overrides = lines.filter((l) => l.listPriceFen !== null);
    if (overrides.length) {
      await audit(
        m,
        ...overrides.map((l) => ({
          actor,
          entity: 'order_line',
          entityId: l.id,
          action: 'price_override',
          at: now,
          before: { orderId, lineNo: l.lineNo, sku: l.sku, unitPriceFen: l.listPriceFen },
          after: { orderId, lineNo: l.lineNo, sku: l.sku, unitPriceFen: l.unitPriceFen },
        })),
      );
    }
    // Last, so the stock rows are locked for as short a time as possible (see reserve()).
    await this.inventory.reserve(
      m,
      orderId,
      lines.map((l) => ({ lineId: l.id, sku: l.sku, qty: l.qty })),
      actor,
      skuKind,
    );
    return toView(order, lines);
  }

  async get(id: string): Promise<OrderView & { owedFen: number; payments: unknown[] }> {
    return this.db.read(async (m) => {
      const order = await m.findOne(Order, { where: { id } });
      if (!order) throw notFound('order', id);
      const lines = await m.find(OrderLine, { where: { orderId: id }, order: { lineNo: 'ASC' } });
      const payments = await m.find(Payment, { where: { orderId: id }, order: { createdAt: 'ASC' } });
      const returns = this.refunder ? await this.refunder.returnsOf(m, id) : [];
      // owedFen: card money to give back (refunds not yet done, disputed attempts the bank charged after all).
      return { ...toView(order, lines), owedFen: owedFenOf(payments), payments: payments.map(paymentSummary), returns };
    });
  }

  /** The lane an order was rung up on, or null when there is no such order (the route answers 404 itself). */
  async laneOf(id: string): Promise<string | null> {
    const r = await this.db.read((m) => rows<{ lane: string }>(m, 'SELECT lane FROM orders WHERE id = ?', [id]));
    return r[0]?.lane ?? null;
  }

  /**
   * Orders newest first, filtered by lane, status and creation time (from inclusive, to exclusive),
   * a page at a time: `next` is an opaque cursor (created_at and id of the last row) for the page after.
   */
  async list(q: OrderListQuery): Promise<{ orders: Omit<OrderView, 'lines' | 'payments'>[]; next: string | null }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.lane !== undefined) {
      where.push('lane = ?');
      params.push(q.lane);
    }
    if (q.status !== undefined) {
      where.push('status = ?');
      params.push(q.status);
    }
    if (q.from !== undefined) {
      where.push('created_at >= ?');
      params.push(q.from);
    }
    if (q.to !== undefined) {
      where.push('created_at < ?');
      params.push(q.to);
    }
    if (q.cursor !== undefined) {
      const c = /^(\d{1,15})\.([0-9a-f-]{36})$/.exec(Buffer.from(q.cursor, 'base64url').toString('utf8'));
      if (!c) throw new DomainError(400, 'invalid_cursor', 'query.cursor: not a cursor this list gave out');
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      params.push(Number(c[1]), Number(c[1]), c[2]);
    }
    const found = (await this.db.read((m) =>
      m.query(
        `SELECT * FROM orders${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ${Number(q.limit) + 1}`,
        params,
      ),
    )) as Record<string, unknown>[];
    const page = found.slice(0, q.limit).map((r) => orderFromRow(r));
    const last = page[page.length - 1];
    return {
      orders: page.map((o) => {
        const { lines: _l, ...v } = toView(o, []);
        return v;
      }),
      next: found.length > q.limit && last ? Buffer.from(`${last.createdAt}.${last.id}`).toString('base64url') : null,
    };
  }

  /**
   * Cancels an order and releases its stock; refused while any payment's outcome is not confirmed.
   * Approved tenders (part paid, customer gone) each get a refund leg, driven once this commits.
   */
  async cancel(id: string, actor: string): Promise<OrderView & { returns: unknown[] }> {
    const { view, returnId } = await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const order = await this.lockOrder(m, id);
      if (order.status !== 'reserved')
        throw conflict('order_not_cancellable', `order ${id} is ${order.status}`, { status: order.status });
      const payments = await m.find(Payment, { where: { orderId: id } });
      const live = payments.filter((p) => LIVE_PAYMENT_STATUSES.includes(p.status));
      if (live.length) {
        throw conflict(
          'payment_in_progress',
          'a card payment of this order has no confirmed outcome yet; its stock stays held',
          { payments: live.map((p) => ({ id: p.id, status: p.status })) },
        );
      }
      const disputed = payments.filter((p) => p.status === 'disputed');
      if (disputed.length) {
        // Evidence says money may have been taken against a final status: a person settles it before anything is refunded.
        throw conflict('payment_disputed', 'a payment of this order is disputed; resolve it before cancelling', {
          payments: disputed.map((p) => ({ id: p.id, status: p.status })),
        });
      }
      let returnId: string | null = null;
      if (payments.some((p) => p.status === 'approved')) {
        if (!this.refunder)
          throw conflict('order_has_payments', 'this order has approved tenders and no refunds are configured', {
            paidFen: order.paidFen,
          });
        returnId = await this.refunder.refundCancelledIn(m, order, actor, now);
      }
      // The order, its coupon, then the stock rows: the lock order of creation and payment (no deadlock with them).
      if (order.couponCode) await this.coupons.giveBack(m, id, order.couponCode, now);
      await this.inventory.release(m, id, actor);
      await moveOrder(m, id, 'reserved', 'cancelled', now);
      await audit(m, {
        actor,
        entity: 'order',
        entityId: id,
        action: 'cancel',
        before: { status: 'reserved' },
        after: { status: 'cancelled', refundReturnId: returnId },
        at: now,
      });
      const lines = await m.find(OrderLine, { where: { orderId: id }, order: { lineNo: 'ASC' } });
      const fresh = await m.findOneOrFail(Order, { where: { id } });
      return { view: toView(fresh, lines), returnId };
    });
    if (returnId) await this.refunder!.drive(returnId);
    const returns = this.refunder ? await this.db.read((m) => this.refunder!.returnsOf(m, id)) : [];
    return { ...view, returns };
  }

  /**
   * Releases reserved orders past their hold whose every payment attempt has a confirmed failure
   * (or that have none). An order with an approved tender, a live attempt or a disputed one never expires here.
   */
  async expireDue(limit = 500): Promise<number> {
    const now = this.clock.now().getTime();
    const due = await this.db.read((m) =>
      rows<{ id: string }>(
        m,
        `SELECT o.id FROM orders o WHERE o.status = 'reserved' AND o.expires_at <= ?
         AND NOT EXISTS (SELECT 1 FROM payment p WHERE p.order_id = o.id AND p.status IN (${LIVE_SQL}, 'approved', 'disputed'))
       ORDER BY o.expires_at LIMIT ${Number(limit)}`,
        [now],
      ),
    );
    let expired = 0;
    for (const { id } of due) {
      const done = await this.db.tx(async (m) => {
        const order = await this.lockOrder(m, id);
        if (order.status !== 'reserved' || order.expiresAt > now) return false;
        const blocking = await rows(
          m,
          `SELECT 1 FROM payment WHERE order_id = ? AND status IN (${LIVE_SQL}, 'approved', 'disputed') LIMIT 1`,
          [id],
        );
        // A disputed payment is evidence the customer may have been charged: its goods wait for a person.
        if (blocking.length) return false;
        // Locks in the order every unit of work takes them: the order, its coupon, then the stock rows.
        if (order.couponCode) await this.coupons.giveBack(m, id, order.couponCode, now);
        await this.inventory.release(m, id, 'system:sweeper');
        await moveOrder(m, id, 'reserved', 'expired', now);
        await audit(m, {
          actor: 'system:sweeper',
          entity: 'order',
          entityId: id,
          action: 'expire',
          before: { status: 'reserved' },
          after: { status: 'expired' },
          at: now,
        });
        return true;
      });
      if (done) expired++;
    }
    return expired;
  }

  /**
   * Extends a live hold (ticketing); refused once it has ended, and never shortens it: the WHERE is the
   * guard, so of two extensions racing on one read the shorter cannot undo the longer.
   */
  async extendHold(m: EntityManager, id: string, untilMs: number): Promise<void> {
    const n = await exec(
      m,
      "UPDATE orders SET expires_at = ?, version = version + 1 WHERE id = ? AND status = 'reserved' AND expires_at <= ?",
      [untilMs, id, untilMs],
    );
    if (n === 1) return;
    const now = await m.findOne(Order, { where: { id } });
    if (now?.status === 'reserved')
      throw conflict(
        'hold_would_shorten',
        `hold ${id} already runs until ${new Date(now.expiresAt).toISOString()}; extending never shortens it`,
        { expiresAt: new Date(now.expiresAt).toISOString() },
      );
    throw conflict('order_not_reserved', `order ${id} no longer holds anything`);
  }

  /** Takes the order's row lock (MySQL) by touching it, then reads it: the rest of the unit of work is serialised per order. */
  async lockOrder(m: EntityManager, id: string): Promise<Order> {
    const n = await exec(m, 'UPDATE orders SET version = version + 1 WHERE id = ?', [id]);
    if (n !== 1) throw notFound('order', id);
    return m.findOneOrFail(Order, { where: { id } });
  }

  async linesOf(m: EntityManager, ids: string[]): Promise<OrderLine[]> {
    return ids.length ? m.find(OrderLine, { where: { orderId: In(ids) } }) : [];
  }
}

/** An `orders` row as read by plain SQL, as the entity. */
export function orderFromRow(r: Record<string, unknown>): Order {
  return Object.assign(new Order(), {
    id: r.id,
    lane: r.lane,
    kind: r.kind,
    eventId: r.event_id ?? null,
    status: r.status,
    totalFen: Number(r.total_fen),
    paidFen: Number(r.paid_fen),
    overpaidFen: Number(r.overpaid_fen),
    expiresAt: Number(r.expires_at),
    createdBy: r.created_by,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    version: Number(r.version),
    subtotalFen: Number(r.subtotal_fen),
    discountFen: Number(r.discount_fen),
    roundingFen: Number(r.rounding_fen),
    refundedFen: Number(r.refunded_fen),
    couponCode: r.coupon_code ?? null,
    couponUse: r.coupon_use ?? null,
  });
}

export function toView(order: Order, lines: OrderLine[]): OrderView {
  return {
    id: order.id,
    lane: order.lane,
    kind: order.kind,
    eventId: order.eventId,
    status: order.status,
    coupon: order.couponCode,
    subtotalFen: order.subtotalFen,
    discountFen: order.discountFen,
    totalFen: order.totalFen,
    roundingFen: order.roundingFen,
    paidFen: order.paidFen,
    overpaidFen: order.overpaidFen,
    refundedFen: order.refundedFen,
    expiresAt: new Date(order.expiresAt).toISOString(),
    createdAt: new Date(order.createdAt).toISOString(),
    lines: lines.map((l) => {
      const amountFen = l.qty * l.unitPriceFen;
      return {
        lineNo: l.lineNo,
        sku: l.sku,
        qty: l.qty,
        unitPriceFen: l.unitPriceFen,
        ...(l.listPriceFen !== null ? { listPriceFen: l.listPriceFen } : {}),
        amountFen,
        discountFen: l.discountFen,
        netFen: amountFen - l.discountFen,
        returnedQty: l.returnedQty,
        reservation: l.reservation,
      };
    }),
  };
}

/**
 * Cash rounding (抹零): what a cash-only payment of the whole order is rounded to, or null when it
 * does not apply (rounding off, another tender already approved, or nothing to drop).
 */
export function cashRoundedDue(
  mode: CashRounding,
  order: Pick<Order, 'totalFen' | 'paidFen' | 'roundingFen'>,
): number | null {
  if (mode !== 'jiao' || order.paidFen !== 0 || order.roundingFen !== 0) return null;
  const due = roundDownToJiao(order.totalFen);
  return due < order.totalFen ? due : null;
}

export function paymentSummary(p: Payment) {
  return {
    id: p.id,
    method: p.method,
    amountFen: p.amountFen,
    status: p.status,
    rf: p.rf,
    cardMasked: p.cardMasked,
    createdAt: new Date(p.createdAt).toISOString(),
  };
}

export { DomainError };
