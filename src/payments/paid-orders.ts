/**
 * What the batched paths that pay orders (cash tenders, the sweeper's verdicts) share: the order row
 * as they read it under its lock, the Order handed to the paid hooks, and the hooks' work split into
 * statements (sent with the batch's writes) and runs (which may read, so they split the writes).
 */
import { Stmt, placeholders } from '../db/db';
import { Order, OrderStatus } from '../orders/order.entity';
import { orderFromRow } from '../orders/orders.service';
import type { OrderPaidHook } from './payments.service';
import type { SaleLine } from '../inventory/reservation-batcher';

export type OrderRow = {
  id: string;
  status: OrderStatus;
  kind: Order['kind'];
  event_id: string | null;
  lane: string;
  subtotal_fen: unknown;
  discount_fen: unknown;
  total_fen: unknown;
  rounding_fen: unknown;
  refunded_fen: unknown;
  paid_fen: unknown;
  overpaid_fen: unknown;
  coupon_code: string | null;
  coupon_use: Order['couponUse'];
  expires_at: unknown;
  created_by: string;
  created_at: unknown;
  updated_at: unknown;
  version: unknown;
};

/** The orders locked in id order (`forUpdate` is the database's locking suffix). */
export function lockOrdersStatement(ids: string[], forUpdate: string): Stmt {
  return {
    sql: `SELECT id, status, kind, event_id, lane, subtotal_fen, discount_fen, total_fen, rounding_fen, refunded_fen, paid_fen, overpaid_fen, coupon_code, coupon_use,
       expires_at, created_by, created_at, updated_at, version FROM orders WHERE id IN (${placeholders(ids.length)}) ORDER BY id${forUpdate}`,
    params: ids,
  };
}

/** The active lines of the orders (sold if their order ends paid). */
export function activeLinesStatement(orderIds: string[]): Stmt {
  return {
    sql: `SELECT id, order_id, sku, qty FROM order_line WHERE reservation = 'active' AND order_id IN (${placeholders(orderIds.length)})`,
    params: orderIds,
  };
}

export type ActiveLine = { id: string; order_id: string; sku: string; qty: unknown };

/** The order as the single path hands it to the paid hooks: as read under its lock (still reserved). */
export function hookOrder(row: OrderRow, now: number, roundingFen = Number(row.rounding_fen)): Order {
  return Object.assign(orderFromRow(row), { status: 'reserved' as const, roundingFen, updatedAt: now });
}

/**
 * The paid hooks' work for orders that became paid: statements (writes only: they go with the
 * batch's writes) and runs (a hook that reads what the payment wrote: the writes split around it).
 */
export function paidHookWork(
  hooks: OrderPaidHook[],
  paid: Order[],
  now: number,
): { statements: Stmt[]; runs: { hook: OrderPaidHook; order: Order }[] } {
  // In coupon-code order: the coupon hook locks each order's coupon row, and two batches that lock the
  // same coupons in different orders would deadlock each other (the order batcher sorts them too).
  const byCoupon = [...paid].sort((a, b) => cmp(a.couponCode ?? '', b.couponCode ?? '') || cmp(a.id, b.id));
  const due = byCoupon.flatMap((order) => hooks.filter((h) => h.appliesTo(order)).map((hook) => ({ hook, order })));
  return {
    statements: due.flatMap(({ hook, order }) => hook.statements?.(order, now) ?? []),
    runs: due.filter(({ hook }) => hook.run),
  };
}

/** The lines sold when their orders end paid: the active lines of the orders in `actorOf`, each with its order's actor. */
export function soldLines(lines: ActiveLine[], actorOf: Map<string, string>): SaleLine[] {
  return lines
    .filter((l) => actorOf.has(l.order_id))
    .map((l) => ({
      orderId: l.order_id,
      lineId: l.id,
      sku: l.sku,
      qty: Number(l.qty),
      actor: actorOf.get(l.order_id)!,
    }));
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
