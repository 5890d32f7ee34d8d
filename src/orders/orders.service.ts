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
import { Order, OrderKind } from './order.entity';
import { OrderLine } from './order-line.entity';
import { moveOrder } from './order-state';
import { Batcher } from '../db/batch';
import { BatchObserver, BatchSettings, PendingOrder, batchSettingsFromEnv, orderBatcher } from './order-batcher';

export interface NewOrder {
  lane: string;
  lines: { sku: string; qty: number }[];
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
  totalFen: number;
  paidFen: number;
  overpaidFen: number;
  expiresAt: string;
  createdAt: string;
  lines: { lineNo: number; sku: string; qty: number; unitPriceFen: number; amountFen: number; reservation: OrderLine['reservation'] }[];
  payments?: unknown[];
}

/** Statuses for which an order's hold outlives its expiry: the payment outcome is not confirmed yet. */
const LIVE_SQL = LIVE_PAYMENT_STATUSES.map((s) => `'${s}'`).join(', ');

export class OrdersService {
  private readonly batcher: Batcher<PendingOrder, OrderView> | null;
  private batchObserver: BatchObserver | undefined;

  constructor(
    private readonly db: Db,
    private readonly inventory: InventoryService,
    private readonly clock: Clock,
    private readonly defaultHoldSeconds: number,
    batch: BatchSettings = batchSettingsFromEnv(db.kind),
  ) {
    this.batcher = batch.enabled ? orderBatcher({
      db, settings: batch, defaultHoldSeconds, toView,
      now: () => this.clock.now().getTime(),
      applyOne: (p) => this.db.tx((m) => this.createIn(m, p.input, p.actor)),
      observe: (info) => this.batchObserver?.(info),
    }) : null;
  }

  /** Sees every order batch (size, seconds, whether it fell back to one order at a time). */
  observeBatches(fn: BatchObserver): void {
    this.batchObserver = fn;
  }

  /** Resolves when no order batch is queued or in flight. */
  async idle(): Promise<void> {
    await this.batcher?.idle();
  }

  /** Rings up an order: prices the lines and reserves all of them, or nothing (409 insufficient_stock). */
  async create(input: NewOrder, actor: string): Promise<OrderView> {
    const seen = new Set<string>();
    for (const l of input.lines) {
      if (seen.has(l.sku)) throw unprocessable('duplicate_line', `SKU ${l.sku} appears on more than one line; put the quantity on one line`, { sku: l.sku });
      seen.add(l.sku);
    }
    // Batched: gathered with concurrent orders into one transaction, answered after its commit.
    if (this.batcher) return this.batcher.submit({ input, actor });
    return this.db.tx((m) => this.createIn(m, input, actor));
  }

  async createIn(m: EntityManager, input: NewOrder, actor: string): Promise<OrderView> {
    const now = this.clock.now().getTime();
    const kind: OrderKind = input.kind ?? 'goods';
    const skuKind: SkuKind = kind === 'seats' ? 'seat' : 'goods';
    const skus = input.lines.map((l) => l.sku);
    const priced = await rows<{ sku: string; price_fen: string | number; on_hand: string | number; reserved: string | number }>(
      m, `SELECT sku, price_fen, on_hand, reserved FROM sku WHERE kind = ? AND sku IN (${placeholders(skus.length)})`, [skuKind, ...skus]);
    const price = new Map(priced.map((p) => [p.sku, Number(p.price_fen)]));
    const unknown = skus.filter((s) => !price.has(s));
    if (unknown.length) throw unprocessable('unknown_sku', `unknown SKU: ${unknown.join(', ')}`, { skus: unknown });
    // Refuse at once what is plainly short (a plain read, no lock); the conditional UPDATE in reserve() stays the guard.
    const available = new Map(priced.map((p) => [p.sku, Number(p.on_hand) - Number(p.reserved)]));
    const plainlyShort = input.lines.filter((l) => available.get(l.sku)! < l.qty);
    if (plainlyShort.length) {
      throw new InsufficientStockError(plainlyShort.map((l) => ({ sku: l.sku, requested: l.qty, available: Math.max(0, available.get(l.sku)!) })));
    }

    const orderId = newId();
    const lines: OrderLine[] = input.lines.map((l, i) => Object.assign(new OrderLine(), {
      id: newId(), orderId, lineNo: i + 1, sku: l.sku, qty: l.qty, unitPriceFen: price.get(l.sku)!, reservation: 'active' as const, endedAt: null,
    }));
    const totalFen = lines.reduce((s, l) => s + l.qty * l.unitPriceFen, 0);
    if (!Number.isSafeInteger(totalFen)) throw unprocessable('total_too_large', 'the order total does not fit in fen');

    const order: Order = Object.assign(new Order(), {
      id: orderId, lane: input.lane, kind, eventId: input.eventId ?? null, status: 'reserved' as const, totalFen, paidFen: 0, overpaidFen: 0,
      expiresAt: now + (input.holdSeconds ?? this.defaultHoldSeconds) * 1000, createdBy: actor, createdAt: now, updatedAt: now, version: 0,
    });
    await m.insert(Order, order);
    await m.insert(OrderLine, lines);
    await audit(m, { actor, entity: 'order', entityId: orderId, action: 'create', after: { status: 'reserved', totalFen, lines: input.lines }, at: now });
    // Last, so the stock rows are locked for as short a time as possible (see reserve()).
    await this.inventory.reserve(m, orderId, lines.map((l) => ({ lineId: l.id, sku: l.sku, qty: l.qty })), actor, skuKind);
    return toView(order, lines);
  }

  async get(id: string): Promise<OrderView & { payments: unknown[] }> {
    return this.db.read(async (m) => {
      const order = await m.findOne(Order, { where: { id } });
      if (!order) throw notFound('order', id);
      const [lines, payments] = await Promise.all([
        m.find(OrderLine, { where: { orderId: id }, order: { lineNo: 'ASC' } }),
        m.find(Payment, { where: { orderId: id }, order: { createdAt: 'ASC' } }),
      ]);
      return { ...toView(order, lines), payments: payments.map(paymentSummary) };
    });
  }

  /** Cancels an order and releases its stock; refused while any payment's outcome is not confirmed. */
  async cancel(id: string, actor: string): Promise<OrderView> {
    return this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const order = await this.lockOrder(m, id);
      if (order.status !== 'reserved') throw conflict('order_not_cancellable', `order ${id} is ${order.status}`, { status: order.status });
      const payments = await m.find(Payment, { where: { orderId: id } });
      const live = payments.filter((p) => LIVE_PAYMENT_STATUSES.includes(p.status));
      if (live.length) {
        throw conflict('payment_in_progress', 'a card payment of this order has no confirmed outcome yet; its stock stays held',
          { payments: live.map((p) => ({ id: p.id, status: p.status })) });
      }
      if (payments.some((p) => p.status === 'approved')) {
        throw conflict('order_has_payments', 'this order has approved tenders; pay the rest or refund them before cancelling',
          { paidFen: order.paidFen });
      }
      await this.inventory.release(m, id, actor);
      await moveOrder(m, id, 'reserved', 'cancelled', now);
      await audit(m, { actor, entity: 'order', entityId: id, action: 'cancel', before: { status: 'reserved' }, after: { status: 'cancelled' }, at: now });
      const lines = await m.find(OrderLine, { where: { orderId: id }, order: { lineNo: 'ASC' } });
      return toView({ ...order, status: 'cancelled', updatedAt: now }, lines);
    });
  }

  /**
   * Releases reserved orders past their hold whose every payment attempt has a confirmed failure
   * (or that have none). An order with an approved tender or a live attempt never expires here.
   */
  async expireDue(limit = 500): Promise<number> {
    const now = this.clock.now().getTime();
    const due = await this.db.read((m) => rows<{ id: string }>(m,
      `SELECT o.id FROM orders o WHERE o.status = 'reserved' AND o.expires_at <= ?
         AND NOT EXISTS (SELECT 1 FROM payment p WHERE p.order_id = o.id AND p.status IN (${LIVE_SQL}, 'approved'))
       ORDER BY o.expires_at LIMIT ${Number(limit)}`, [now]));
    let expired = 0;
    for (const { id } of due) {
      const done = await this.db.tx(async (m) => {
        const order = await this.lockOrder(m, id);
        if (order.status !== 'reserved' || order.expiresAt > now) return false;
        const blocking = await rows(m, `SELECT 1 FROM payment WHERE order_id = ? AND status IN (${LIVE_SQL}, 'approved') LIMIT 1`, [id]);
        if (blocking.length) return false;
        await this.inventory.release(m, id, 'system:sweeper');
        await moveOrder(m, id, 'reserved', 'expired', now);
        await audit(m, { actor: 'system:sweeper', entity: 'order', entityId: id, action: 'expire', before: { status: 'reserved' }, after: { status: 'expired' }, at: now });
        return true;
      });
      if (done) expired++;
    }
    return expired;
  }

  /** Extends a live hold (ticketing); refused once it has ended. */
  async extendHold(m: EntityManager, id: string, untilMs: number): Promise<void> {
    const n = await exec(m, "UPDATE orders SET expires_at = ?, version = version + 1 WHERE id = ? AND status = 'reserved'", [untilMs, id]);
    if (n !== 1) throw conflict('order_not_reserved', `order ${id} no longer holds anything`);
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

export function toView(order: Order, lines: OrderLine[]): OrderView {
  return {
    id: order.id, lane: order.lane, kind: order.kind, eventId: order.eventId, status: order.status,
    totalFen: order.totalFen, paidFen: order.paidFen, overpaidFen: order.overpaidFen,
    expiresAt: new Date(order.expiresAt).toISOString(), createdAt: new Date(order.createdAt).toISOString(),
    lines: lines.map((l) => ({ lineNo: l.lineNo, sku: l.sku, qty: l.qty, unitPriceFen: l.unitPriceFen, amountFen: l.qty * l.unitPriceFen, reservation: l.reservation })),
  };
}

export function paymentSummary(p: Payment) {
  return { id: p.id, method: p.method, amountFen: p.amountFen, status: p.status, rf: p.rf, cardMasked: p.cardMasked, createdAt: new Date(p.createdAt).toISOString() };
}

export { DomainError };
