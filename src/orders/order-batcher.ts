/**
 * Rings up many orders in one transaction (see db/batch.ts for the gathering and the fallback, and
 * inventory/reservation-batcher.ts for the stock side). Plain rows and multi-row INSERTs: no entity
 * is read back on this path; the answer is built from what was written.
 */
import { EntityManager } from 'typeorm';
import { Db, exec } from '../db/db';
import { Batcher, Outcome, multiRowInsert } from '../db/batch';
import { DomainError, unprocessable } from '../shared/errors';
import { newId } from '../shared/ids';
import { SkuKind } from '../inventory/sku.entity';
import { BatchGuardError, HoldRequest, allocate, applyHolds, lockStock } from '../inventory/reservation-batcher';
import { Order, OrderKind } from './order.entity';
import { OrderLine } from './order-line.entity';
import type { NewOrder, OrderView } from './orders.service';

export interface PendingOrder {
  input: NewOrder;
  actor: string;
}

export interface BatchSettings {
  enabled: boolean;
  maxSize: number;
  maxWaitMs: number;
  maxInFlight: number;
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
  };
}

export type BatchObserver = (info: { name: string; size: number; seconds: number; fallback: boolean }) => void;

const ORDER_COLUMNS = ['id', 'lane', 'kind', 'event_id', 'status', 'total_fen', 'paid_fen', 'overpaid_fen', 'expires_at', 'created_by', 'created_at', 'updated_at', 'version'];
const LINE_COLUMNS = ['id', 'order_id', 'line_no', 'sku', 'qty', 'unit_price_fen', 'reservation', 'ended_at'];
const AUDIT_COLUMNS = ['actor', 'entity', 'entity_id', 'action', 'before', 'after', 'at'];

export function orderBatcher(deps: {
  db: Db;
  now(): number;
  defaultHoldSeconds: number;
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
      return { orderId, skuKind, actor: p.actor, lines: p.input.lines.map((l) => ({ lineId: newId(), sku: l.sku, qty: l.qty })) };
    });
    const stock = await lockStock(m, requests.flatMap((r) => r.lines.map((l) => l.sku)), lock);
    const { verdicts } = allocate(stock, requests);

    const outcomes: Outcome<OrderView>[] = [];
    const accepted: HoldRequest[] = [];
    const orderRows: unknown[][] = [];
    const lineRows: unknown[][] = [];
    const auditRows: unknown[][] = [];
    pending.forEach((p, i) => {
      const v = verdicts[i];
      if (!v.ok) { outcomes.push({ ok: false, error: v.error }); return; }
      const req = requests[i];
      const kind: OrderKind = p.input.kind ?? 'goods';
      const lines: OrderLine[] = req.lines.map((l, j) => Object.assign(new OrderLine(), {
        id: l.lineId, orderId: req.orderId, lineNo: j + 1, sku: l.sku, qty: l.qty, unitPriceFen: stock.get(l.sku)!.priceFen, reservation: 'active' as const, endedAt: null,
      }));
      const totalFen = lines.reduce((s, l) => s + l.qty * l.unitPriceFen, 0);
      if (!Number.isSafeInteger(totalFen)) { outcomes.push({ ok: false, error: unprocessable('total_too_large', 'the order total does not fit in fen') }); return; }
      const order: Order = Object.assign(new Order(), {
        id: req.orderId, lane: p.input.lane, kind, eventId: p.input.eventId ?? null, status: 'reserved' as const, totalFen, paidFen: 0, overpaidFen: 0,
        expiresAt: now + (p.input.holdSeconds ?? deps.defaultHoldSeconds) * 1000, createdBy: p.actor, createdAt: now, updatedAt: now, version: 0,
      });
      accepted.push(req);
      orderRows.push([order.id, order.lane, order.kind, order.eventId, order.status, totalFen, 0, 0, order.expiresAt, p.actor, now, now, 0]);
      for (const l of lines) lineRows.push([l.id, l.orderId, l.lineNo, l.sku, l.qty, l.unitPriceFen, 'active', null]);
      auditRows.push([p.actor, 'order', order.id, 'create', null, JSON.stringify({ status: 'reserved', totalFen, lines: p.input.lines }), now]);
      outcomes.push({ ok: true, value: deps.toView(order, lines) });
    });
    // An order refused for a reason memory could not foresee is impossible here: totals only count accepted orders.
    const totals = new Map<string, number>();
    for (const r of accepted) for (const l of r.lines) totals.set(l.sku, (totals.get(l.sku) ?? 0) + l.qty);

    for (const q of multiRowInsert('orders', ORDER_COLUMNS, orderRows)) await exec(m, q.sql, q.params);
    for (const q of multiRowInsert('order_line', LINE_COLUMNS, lineRows)) await exec(m, q.sql, q.params);
    for (const q of multiRowInsert('audit_log', AUDIT_COLUMNS, auditRows)) await exec(m, q.sql, q.params);
    // Last: one guarded UPDATE per SKU, in SKU order.
    await applyHolds(m, accepted, totals, now);
    return outcomes;
  }
}

export { DomainError };
