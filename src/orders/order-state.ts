import { EntityManager } from 'typeorm';
import { exec } from '../db/db';
import { conflict } from '../shared/errors';
import { OrderStatus } from './order.entity';

/** The only ways an order's status may change. */
export const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  reserved: ['paid', 'cancelled', 'expired'],
  paid: [],
  cancelled: [],
  expired: [],
};

export function canMoveOrder(from: OrderStatus, to: OrderStatus): boolean {
  return ORDER_TRANSITIONS[from].includes(to);
}

/**
 * Moves an order from `from` to `to` with a conditional UPDATE, so two units of work racing on the
 * same order cannot both move it. Throws a 409 when the table forbids it or the order moved first.
 */
export async function moveOrder(
  m: EntityManager,
  orderId: string,
  from: OrderStatus,
  to: OrderStatus,
  now: number,
): Promise<void> {
  if (!canMoveOrder(from, to))
    throw conflict('order_transition_refused', `an order cannot go from ${from} to ${to}`, { orderId, from, to });
  const n = await exec(
    m,
    'UPDATE orders SET status = ?, updated_at = ?, version = version + 1 WHERE id = ? AND status = ?',
    [to, now, orderId, from],
  );
  if (n !== 1) throw conflict('order_changed', `order ${orderId} is no longer ${from}`, { orderId, from, to });
}
