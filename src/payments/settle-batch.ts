/**
 * Verdicts on card attempts — approved, failed (declined or reversed), or still unknown and checked
 * again later — many in one transaction. The sweeper settles its attempts this way, and the single
 * paths (the terminal's answer, a person's resolve, the T+1 file) are a batch of one, so an approval
 * is written by this one piece of code whoever confirms it.
 *
 * The reads go in one round trip (db.runAll): the orders of the approvals locked in id order, then
 * the payments locked in id order, then the approvals' active lines. Each verdict is then decided in
 * arrival order against the locked rows, with the same refusals as before (a payment that can no
 * longer move to the verdict's status is `payment_transition_refused`, the caller's answer alone),
 * and the writes go in one more round trip: one guarded UPDATE per payment and per touched order,
 * the audit rows in one INSERT, the paid orders' stock sold with one guarded UPDATE per SKU, last.
 * A paid hook that reads splits the writes around it, as in the cash batch. A guard that does not
 * hold fails the whole batch (nothing of it is committed) and the caller retries each verdict alone.
 */
import { EntityManager } from 'typeorm';
import { Db, Stmt, placeholders, runAll } from '../db/db';
import { Outcome, multiRowInsert } from '../db/batch';
import { notFound } from '../shared/errors';
import { BatchGuardError, saleStatements } from '../inventory/reservation-batcher';
import { AUDIT_COLUMNS, auditRow } from '../audit/audit.service';
import { canMoveOrder } from '../orders/order-state';
import { PaymentStatus, TerminalReversal } from './payment.entity';
import { canMovePayment, paymentUpdate, transitionRefused } from './payment-state';
import {
  ActiveLine,
  OrderRow,
  activeLinesStatement,
  lockOrdersStatement,
  hookOrder,
  paidHookWork,
  soldLines,
} from './paid-orders';
import type { ApprovalFacts, OrderPaidHook } from './payments.service';

export type Columns = Record<string, string | number | null>;

/** A confirmed approval (terminal, acquirer, the T+1 file or a person): sells the stock when tenders cover the order. */
export interface ApproveVerdict {
  kind: 'approve';
  paymentId: string;
  /** The payment's order (it never changes): locked before the payment, as on every path that pays an order. */
  orderId: string;
  /**
   * The payment's lane (it never changes): its open shift is locked before the order, in the order a cash
   * tender takes them (shift-lock.ts), so that an approval and a tender of one order cannot each hold what
   * the other waits for.
   */
  lane: string | null;
  facts: ApprovalFacts;
  actor: string;
  /** A person's resolution note (the audit action is then `resolve`). */
  note?: string;
  /** A check by the sweeper: counts one more check. */
  checked?: boolean;
}

/** A confirmed failure: the order keeps its reservation for another try. */
export interface FailVerdict {
  kind: 'fail';
  paymentId: string;
  to: 'declined' | 'reversed';
  info: { rc?: string | null; rm?: string | null; reason: string };
  actor: string;
  note?: string;
  checked?: boolean;
  terminalReversal?: TerminalReversal;
}

/**
 * Still no outcome: the next check is scheduled (`set`), and past its deadline the attempt is parked
 * in suspense (stock still held). Written only while the payment is still `from`; its outcome says
 * whether it was parked.
 */
export interface RecheckVerdict {
  kind: 'recheck';
  paymentId: string;
  from: PaymentStatus;
  set: Columns;
  park: { reason: string } | null;
}

export type SettleVerdict = ApproveVerdict | FailVerdict | RecheckVerdict;

const CARD_TERMINAL_FACTS: Record<keyof ApprovalFacts, string> = {
  rc: 'rc',
  rm: 'rm',
  cardMasked: 'card_masked',
  cardType: 'card_type',
  terminalId: 'terminal_id',
  merchantId: 'merchant_id',
  batchNo: 'batch_no',
  traceNo: 'trace_no',
  rrn: 'rrn',
  authCode: 'auth_code',
  terminalTime: 'terminal_time',
  settleDate: 'settle_date',
  queryId: 'query_id',
};

interface PaymentRow {
  id: string;
  order_id: string;
  method: string;
  amount_fen: unknown;
  status: PaymentStatus;
  checks: unknown;
  lane: string | null;
}

interface OrderState {
  row: OrderRow;
  status: OrderRow['status'];
  paid: number;
  overpaid: number;
  touched: boolean;
}

/** Outcomes in input order: `true` for a verdict written, whether it was parked for a recheck, or the refusal. */
export async function applyVerdicts(
  m: EntityManager,
  db: Db,
  verdicts: SettleVerdict[],
  /**
   * The statements that lock the approvals' lanes' open shifts (none when shifts are off), sent first; the
   * verdicts' time is read after them (PaymentsService.moneyTime). An approval is never refused for want of a
   * shift (the money was taken): the lock only orders it with a close, so that its time falls inside the
   * window of the shift whose report counts it, or after it.
   */
  shiftLocks: (lanes: (string | null)[]) => Stmt[],
  nowFn: () => number,
  hooks: OrderPaidHook[],
  /** Writes of the caller's that go first, in the reads' round trip (the sweeper's reversal marks). */
  first: Stmt[] = [],
): Promise<Outcome<boolean>[]> {
  const paymentIds = [...new Set(verdicts.map((v) => v.paymentId))].sort();
  const approvals = verdicts.filter((v): v is ApproveVerdict => v.kind === 'approve');
  const orderIds = [...new Set(approvals.map((v) => v.orderId))].sort();
  const shiftsFirst = shiftLocks(approvals.map((v) => v.lane));
  const reads: Stmt[] = [...shiftsFirst];
  if (orderIds.length) reads.push(lockOrdersStatement(orderIds, db.forUpdate));
  reads.push({
    sql: `SELECT id, order_id, method, amount_fen, status, checks, lane FROM payment WHERE id IN (${placeholders(paymentIds.length)}) ORDER BY id${db.forUpdate}`,
    params: paymentIds,
  });
  if (orderIds.length) reads.push(activeLinesStatement(orderIds));
  const results = (await runAll(m, [...first, ...reads])).slice(first.length + shiftsFirst.length);
  const orderRows = orderIds.length ? (results[0].rows as unknown as OrderRow[]) : [];
  const paymentRows = results[orderIds.length ? 1 : 0].rows as unknown as PaymentRow[];
  const lines = orderIds.length ? (results[2].rows as unknown as ActiveLine[]) : [];
  const payments = new Map(paymentRows.map((p) => [p.id, p]));
  const now = nowFn(); // once the shifts are locked
  const orders = new Map<string, OrderState>(
    orderRows.map((row) => [
      row.id,
      { row, status: row.status, paid: Number(row.paid_fen), overpaid: Number(row.overpaid_fen), touched: false },
    ]),
  );

  const outcomes: Outcome<boolean>[] = [];
  const paymentWrites: Stmt[] = [];
  const auditRows: unknown[][] = [];
  const paidNow: { order: OrderState; actor: string }[] = [];
  const audit = (actor: string, entity: string, entityId: string, action: string, before: unknown, after: unknown) =>
    auditRows.push(auditRow({ actor, entity, entityId, action, before, after, at: now }));

  for (const v of verdicts) {
    const p = payments.get(v.paymentId);
    if (!p) {
      outcomes.push({ ok: false, error: notFound('payment', v.paymentId) });
      continue;
    }
    if (v.kind === 'recheck') {
      // Settled (or parked) by another hand since it was claimed: nothing to schedule.
      if (p.status !== v.from) {
        outcomes.push({ ok: true, value: false });
        continue;
      }
      const set: Columns = { ...v.set };
      if (v.park) set.status = 'suspense';
      paymentWrites.push(guardedPaymentUpdate(p.id, p.status, now, set));
      if (v.park)
        audit(
          'system:sweeper',
          'payment',
          p.id,
          'suspense',
          { status: 'unknown' },
          { status: 'suspense', reason: v.park.reason },
        );
      p.status = v.park ? 'suspense' : p.status;
      outcomes.push({ ok: true, value: v.park !== null });
      continue;
    }
    const to = v.kind === 'approve' ? 'approved' : v.to;
    if (!canMovePayment(p.status, to)) {
      outcomes.push({ ok: false, error: transitionRefused(p.id, p.status, to) });
      continue;
    }
    let order: OrderState | undefined;
    if (v.kind === 'approve') {
      order = orders.get(p.order_id);
      if (!order || p.order_id !== v.orderId) {
        outcomes.push({ ok: false, error: notFound('order', p.order_id) });
        continue;
      }
    }
    const set: Columns = { status: to, finished_at: now, next_check_at: null, claimed_by: null, claim_until: null };
    if (v.checked) set.checks = Number(p.checks) + 1;
    if (v.note !== undefined) Object.assign(set, { resolution_note: v.note, resolved_by: v.actor });
    const action = v.note !== undefined ? 'resolve' : v.kind === 'approve' ? 'approve' : v.to;
    if (v.kind === 'approve') {
      // An approval leaves no stale reason from the time it was unknown.
      set.reason = null;
      for (const [k, col] of Object.entries(CARD_TERMINAL_FACTS)) {
        const fact = v.facts[k as keyof ApprovalFacts];
        if (fact != null) set[col] = fact;
      }
      audit(v.actor, 'payment', p.id, action, { status: p.status }, { status: 'approved', note: v.note, ...v.facts });
      const o = order!;
      const wasReserved = o.status === 'reserved';
      const owed = applyToOrder(o, Number(p.amount_fen), (paidFen) => {
        paidNow.push({ order: o, actor: v.actor });
        audit(v.actor, 'order', o.row.id, 'paid', { status: 'reserved' }, { status: 'paid', paidFen });
      });
      if (!wasReserved)
        audit(v.actor, 'order', o.row.id, 'overpaid', undefined, {
          paymentId: p.id,
          amountFen: owed,
          orderStatus: o.status,
        });
      // Money this order does not owe goes back to the card (cash change is given at the till).
      if (owed > 0 && p.method === 'card') Object.assign(set, { refund_state: 'queued', refund_fen: owed });
    } else {
      set.reason = v.info.reason.slice(0, 255);
      if (v.terminalReversal) set.terminal_reversal = v.terminalReversal;
      if (v.info.rc != null) set.rc = v.info.rc;
      if (v.info.rm != null) set.rm = v.info.rm.slice(0, 128);
      audit(v.actor, 'payment', p.id, action, { status: p.status }, { status: v.to, ...v.info, note: v.note });
    }
    paymentWrites.push(guardedPaymentUpdate(p.id, p.status, now, set));
    p.status = to;
    outcomes.push({ ok: true, value: true });
  }

  const touched = [...orders.values()].filter((o) => o.touched);
  const orderWrites: Stmt[] = touched.map((o) => ({
    sql: 'UPDATE orders SET paid_fen = ?, overpaid_fen = ?, status = ?, updated_at = ?, version = version + 1 WHERE id = ? AND status = ?',
    params: [o.paid, o.overpaid, o.status, now, o.row.id, o.row.status],
    guard: { rows: 1, error: () => new BatchGuardError(`order ${o.row.id} changed under its lock`) },
  }));
  const hooksDue = paidHookWork(
    hooks,
    paidNow.map(({ order }) => hookOrder(order.row, now)),
    now,
  );
  const sale = soldLines(lines, new Map(paidNow.map(({ order, actor }) => [order.row.id, actor])));
  // The stock rows, the contended ones, come last.
  const rest: Stmt[] = [...multiRowInsert('audit_log', AUDIT_COLUMNS, auditRows), ...saleStatements(sale, now)];
  if (hooksDue.runs.length === 0) {
    await runAll(m, [...paymentWrites, ...orderWrites, ...hooksDue.statements, ...rest]);
  } else {
    await runAll(m, [...paymentWrites, ...orderWrites, ...hooksDue.statements]);
    for (const { hook, order } of hooksDue.runs) await hook.run!(m, order, now);
    await runAll(m, rest);
  }
  return outcomes;
}

/**
 * Applies an approved amount to its order, in memory: paid once covered (`onPaid`), the excess over
 * what is due recorded as overpaid. An order settled meanwhile (paid by another tender, or ended)
 * owes none of it. Returns what the order does not owe.
 */
function applyToOrder(o: OrderState, amountFen: number, onPaid: (paidFen: number) => void): number {
  o.touched = true;
  if (o.status !== 'reserved') {
    o.overpaid += amountFen;
    return amountFen;
  }
  const due = Number(o.row.total_fen) - Number(o.row.rounding_fen);
  const paid = o.paid + amountFen;
  const excess = Math.max(0, paid - due);
  o.paid = paid;
  o.overpaid += excess;
  if (paid >= due && canMoveOrder('reserved', 'paid')) {
    o.status = 'paid';
    onPaid(paid);
  }
  return excess;
}

/** One payment's guarded UPDATE: it must still be in the status read under its lock. */
function guardedPaymentUpdate(id: string, from: PaymentStatus, now: number, set: Columns): Stmt {
  return {
    ...paymentUpdate(id, from, now, set),
    guard: { rows: 1, error: () => new BatchGuardError(`payment ${id} changed under its lock`) },
  };
}
