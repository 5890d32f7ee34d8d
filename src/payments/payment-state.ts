import { EntityManager } from 'typeorm';
import { Stmt, exec } from '../db/db';
import { conflict } from '../shared/errors';
import { PaymentStatus } from './payment.entity';

/**
 * The only ways a payment attempt's status may change. `unknown` and `suspense` can only end in a
 * confirmed outcome; nothing goes back to `pending`. A final status meets verified evidence against
 * it (charged after all, or a person's contrary word) by becoming `disputed`, which only a person
 * ends (`resolve`): the money was taken, so it ends `approved` (goods sold, or a refund owed).
 */
export const PAYMENT_TRANSITIONS: Readonly<Record<PaymentStatus, readonly PaymentStatus[]>> = {
  pending: ['approved', 'declined', 'unknown'],
  unknown: ['approved', 'declined', 'reversed', 'suspense'],
  suspense: ['approved', 'declined', 'reversed'],
  approved: ['disputed'],
  declined: ['disputed'],
  reversed: ['disputed'],
  disputed: ['approved'],
};

/** Attempts whose outcome is not known: their order's stock stays held. */
export const LIVE_PAYMENT_STATUSES: readonly PaymentStatus[] = ['pending', 'unknown', 'suspense'];
export const FINAL_PAYMENT_STATUSES: readonly PaymentStatus[] = ['approved', 'declined', 'reversed'];

export function canMovePayment(from: PaymentStatus, to: PaymentStatus): boolean {
  return PAYMENT_TRANSITIONS[from].includes(to);
}

/** The refusal of a move the table does not allow (409). */
export function transitionRefused(paymentId: string, from: PaymentStatus, to: PaymentStatus) {
  return conflict('payment_transition_refused', `a payment cannot go from ${from} to ${to}`, { paymentId, from, to });
}

/** Conditional UPDATE of the status plus any other columns of the same change; 409 when it lost a race. */
export async function movePayment(
  m: EntityManager,
  paymentId: string,
  from: PaymentStatus,
  to: PaymentStatus,
  now: number,
  set: Record<string, string | number | null> = {},
): Promise<void> {
  if (!canMovePayment(from, to)) throw transitionRefused(paymentId, from, to);
  const st = paymentUpdate(paymentId, from, now, { status: to, ...set });
  const n = await exec(m, st.sql, st.params);
  if (n !== 1) throw conflict('payment_changed', `payment ${paymentId} is no longer ${from}`, { paymentId, from, to });
}

/** One payment's UPDATE of `set` (and updated_at) while it is still `from`: movePayment's, and a batch's (db.runAll). */
export function paymentUpdate(
  paymentId: string,
  from: PaymentStatus,
  now: number,
  set: Record<string, string | number | null>,
): Stmt {
  const cols = Object.keys(set);
  return {
    sql: `UPDATE payment SET ${[...cols.map((c) => `${c} = ?`), 'updated_at = ?'].join(', ')} WHERE id = ? AND status = ?`,
    params: [...cols.map((c) => set[c]), now, paymentId, from],
  };
}
