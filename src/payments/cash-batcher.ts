/**
 * Cash tenders, many in one transaction: the orders locked once in id order, each tender decided in
 * arrival order against the locked rows (the same refusals as the single path in tender()), the
 * payments and audit rows in multi-row INSERTs, the orders moved with one conditional UPDATE, and the
 * paid orders' stock sold with one guarded UPDATE per SKU (inventory/reservation-batcher.applySales).
 * Cash is approved on the spot and its change is given at the till, so no refund is ever queued here.
 * The reads go in one round trip and the writes in one more (db.runAll) unless a paid hook has work.
 */
import { EntityManager } from 'typeorm';
import { Db, Stmt, placeholders, runAll } from '../db/db';
import { Batcher, Outcome, multiRowInsert } from '../db/batch';
import { AnswerSlot, answerStatements } from '../http/idempotency';
import { wrongLane } from '../http/auth';
import { DomainError, conflict, notFound, unprocessable } from '../shared/errors';
import { newId } from '../shared/ids';
import { BatchGuardError, saleStatements } from '../inventory/reservation-batcher';
import { type BatchObserver, type BatchSettings } from '../orders/order-batcher';
import { AUDIT_COLUMNS, auditRow } from '../audit/audit.service';
import { canMoveOrder } from '../orders/order-state';
import { CashRounding, cashRoundedDue } from '../orders/orders.service';
import { Payment } from './payment.entity';
import {
  ActiveLine,
  OrderRow,
  activeLinesStatement,
  lockOrdersStatement,
  hookOrder,
  paidHookWork,
  soldLines,
} from './paid-orders';
import { LIVE_PAYMENT_STATUSES } from './payment-state';
import { noOpenShift, openLanesOf, openShiftsStatements } from '../shifts/shift-lock';
import type { OrderPaidHook, PaymentView, TenderInput } from './payments.service';

export interface CashTender {
  orderId: string;
  input: TenderInput;
  actor: string;
  /** The request's Idempotency-Key answer, written in the batch's transaction with the payment. */
  answer?: AnswerSlot;
  /** A lane-bound key's lane: the order must be on it. */
  boundLane?: string;
}

const LIVE_SQL = LIVE_PAYMENT_STATUSES.map((s) => `'${s}'`).join(', ');
const PAYMENT_COLUMNS = [
  'id',
  'order_id',
  'method',
  'amount_fen',
  'status',
  'lane',
  'acked',
  'checks',
  'created_by',
  'created_at',
  'updated_at',
  'finished_at',
];

/** A cash payment as the database would return it after the insert. */
function cashPayment(orderId: string, input: TenderInput, actor: string, now: number): Payment {
  return Object.assign(new Payment(), {
    id: newId(),
    orderId,
    method: 'cash' as const,
    amountFen: input.amountFen,
    status: 'approved' as const,
    lane: input.lane,
    rf: null,
    txnTime: null,
    acked: false,
    rc: null,
    rm: null,
    reason: null,
    prompts: null,
    cardMasked: null,
    cardType: null,
    terminalId: null,
    merchantId: null,
    batchNo: null,
    traceNo: null,
    rrn: null,
    authCode: null,
    terminalTime: null,
    settleDate: null,
    queryId: null,
    nextCheckAt: null,
    checks: 0,
    unknownSince: null,
    reversalState: null,
    claimedBy: null,
    claimUntil: null,
    refundState: null,
    refundFen: null,
    resolvedBy: null,
    resolutionNote: null,
    createdBy: actor,
    createdAt: now,
    updatedAt: now,
    finishedAt: now,
  });
}

export function cashBatcher(deps: {
  db: Db;
  now(): number;
  settings: BatchSettings;
  paidHooks: OrderPaidHook[];
  cashRounding(): CashRounding;
  toView(p: Payment): PaymentView;
  applyOne(t: CashTender): Promise<PaymentView>;
  observe?: BatchObserver;
  /** POS_SHIFTS=on: a tender needs its lane's open shift, share-locked in the batch (shifts/shift-lock.ts). */
  shiftLocks(): boolean;
}): Batcher<CashTender, PaymentView> {
  const { db, settings } = deps;
  return new Batcher<CashTender, PaymentView>({
    name: 'cash',
    maxSize: settings.maxSize,
    maxWaitMs: settings.maxWaitMs,
    maxInFlight: settings.maxInFlight,
    applyOne: deps.applyOne,
    onBatch: (info) => deps.observe?.(info),
    applyBatch: (tenders) =>
      db.tx((m) =>
        applyCash(m, db, tenders, deps.now, deps.paidHooks, deps.toView, deps.cashRounding(), deps.shiftLocks()),
      ),
  });
}

async function applyCash(
  m: EntityManager,
  db: Db,
  tenders: CashTender[],
  clock: () => number,
  hooks: OrderPaidHook[],
  toView: (p: Payment) => PaymentView,
  rounding: CashRounding,
  shiftLocks: boolean,
): Promise<Outcome<PaymentView>[]> {
  const ids = [...new Set(tenders.map((t) => t.orderId))].sort();
  // The batch's reads in one round trip (db.runAll): with shifts on, the lanes' open shifts share-locked
  // first; the orders locked in id order, their live payments, and their active lines (sold below if their
  // order ends paid).
  const shiftRead = shiftLocks
    ? openShiftsStatements(
        db,
        tenders.map((t) => t.input.lane),
      )
    : [];
  const results = await runAll(m, [
    ...shiftRead,
    lockOrdersStatement(ids, db.forUpdate),
    {
      sql: `SELECT id, order_id, status FROM payment WHERE order_id IN (${placeholders(ids.length)}) AND status IN (${LIVE_SQL})`,
      params: ids,
    },
    activeLinesStatement(ids),
  ]);
  // In the reads' round trip rather than through lockOpenShifts: one round trip less per batch.
  const openLanes = shiftLocks ? openLanesOf(results[shiftRead.length - 1].rows) : null;
  const [lockedR, liveR, linesR] = results.slice(shiftRead.length);
  // The sales' time, read once the shift locks are held (shift-lock.ts).
  const now = clock();
  const locked = lockedR.rows as unknown as OrderRow[];
  const live = liveR.rows as { id: string; order_id: string; status: string }[];
  const activeLines = linesR.rows as ActiveLine[];
  const orders = new Map(
    locked.map((o) => [
      o.id,
      {
        row: o,
        status: o.status,
        total: Number(o.total_fen),
        paid: Number(o.paid_fen),
        rounding: Number(o.rounding_fen),
      },
    ]),
  );

  const outcomes: Outcome<PaymentView>[] = [];
  const answers: { slot: AnswerSlot; body: PaymentView }[] = [];
  const payments: Payment[] = [];
  const auditRows: unknown[][] = [];
  const nowPaid: string[] = [];
  for (const t of tenders) {
    const o = orders.get(t.orderId);
    const refuse = (error: DomainError) => outcomes.push({ ok: false, error });
    if (!o) {
      refuse(notFound('order', t.orderId));
      continue;
    }
    if (t.boundLane && o.row.lane !== t.boundLane) {
      refuse(wrongLane(t.boundLane, o.row.lane));
      continue;
    }
    if (openLanes && !openLanes.has(t.input.lane)) {
      refuse(noOpenShift(t.input.lane));
      continue;
    }
    if (o.status !== 'reserved') {
      refuse(conflict('order_not_payable', `order ${t.orderId} is ${o.status}`, { status: o.status }));
      continue;
    }
    const itsLive = live.filter((p) => p.order_id === t.orderId);
    const pending = itsLive.find((p) => p.status === 'pending');
    if (pending) {
      refuse(
        conflict('payment_in_progress', 'a card payment is in progress at the terminal', {
          paymentId: pending.id,
          status: pending.status,
        }),
      );
      continue;
    }
    if (itsLive.length && !t.input.acceptUnknownCard) {
      refuse(
        conflict(
          'payment_in_progress',
          'a card payment of this order has an unknown outcome; take another tender only with acceptUnknownCard: true',
          { payments: itsLive.map((p) => ({ id: p.id, status: p.status })) },
        ),
      );
      continue;
    }
    // Cash rounding (抹零), as on the single path: a cash-only payment of the rounded total drops the odd fen.
    const rounded =
      itsLive.length === 0
        ? cashRoundedDue(rounding, { totalFen: o.total, paidFen: o.paid, roundingFen: o.rounding })
        : null;
    const roundingNow = rounded !== null && t.input.amountFen === rounded ? o.total - rounded : o.rounding;
    const outstanding = o.total - roundingNow - o.paid;
    if (t.input.amountFen > outstanding) {
      refuse(
        unprocessable('amount_exceeds_balance', `the order has ${outstanding} fen left to pay`, {
          outstandingFen: outstanding,
          amountFen: t.input.amountFen,
        }),
      );
      continue;
    }
    o.rounding = roundingNow;
    const p = cashPayment(t.orderId, t.input, t.actor, now);
    payments.push(p);
    auditRows.push(
      auditRow({
        actor: t.actor,
        entity: 'payment',
        entityId: p.id,
        action: 'tender',
        after: { orderId: t.orderId, method: 'cash', amountFen: p.amountFen, status: 'approved', rf: null },
        at: now,
      }),
    );
    o.paid += p.amountFen;
    if (o.paid >= o.total - o.rounding && canMoveOrder('reserved', 'paid')) {
      o.status = 'paid';
      nowPaid.push(o.row.id);
      auditRows.push(
        auditRow({
          actor: t.actor,
          entity: 'order',
          entityId: o.row.id,
          action: 'paid',
          before: { status: 'reserved' },
          after: { status: 'paid', paidFen: o.paid },
          at: now,
        }),
      );
    }
    const view = toView(p);
    if (t.answer) answers.push({ slot: t.answer, body: view });
    outcomes.push({ ok: true, value: view });
  }
  if (payments.length === 0) return outcomes;

  const paymentRows = multiRowInsert(
    'payment',
    PAYMENT_COLUMNS,
    payments.map((p) => [p.id, p.orderId, 'cash', p.amountFen, 'approved', p.lane, 0, 0, p.createdBy, now, now, now]),
  );
  // Every touched order in one conditional UPDATE: it must still be reserved with the paid amount we read.
  const tendered = new Set(payments.map((p) => p.orderId));
  const touched = [...orders.values()].filter((o) => tendered.has(o.row.id));
  const caseOf = `CASE id ${touched.map(() => 'WHEN ? THEN ?').join(' ')} END`;
  const moveOrders: Stmt = {
    sql: `UPDATE orders SET paid_fen = ${caseOf}, rounding_fen = ${caseOf}, status = ${caseOf}, updated_at = ?, version = version + 1
      WHERE status = 'reserved' AND id IN (${placeholders(touched.length)})`,
    params: [
      ...touched.flatMap((o) => [o.row.id, o.paid]),
      ...touched.flatMap((o) => [o.row.id, o.rounding]),
      ...touched.flatMap((o) => [o.row.id, o.status]),
      now,
      ...touched.map((o) => o.row.id),
    ],
    guard: {
      rows: touched.length,
      error: () => new BatchGuardError(`batch cash moved fewer than ${touched.length} orders`),
    },
  };

  const paidOrders = nowPaid.map((id) => hookOrder(orders.get(id)!.row, now, orders.get(id)!.rounding));
  // Hooks that only write (the receipt's print job) go with the batch's writes; one that reads splits them.
  const hooksDue = paidHookWork(hooks, paidOrders, now);

  const actorOf = new Map(tenders.map((t) => [t.orderId, t.actor]));
  const sale = soldLines(activeLines, new Map(nowPaid.map((id) => [id, actorOf.get(id)!])));
  // The keyed tenders' answers commit with their payments (a retry after a crash replays, never re-runs);
  // the stock rows, the contended ones, come last.
  const rest: Stmt[] = [
    ...multiRowInsert('audit_log', AUDIT_COLUMNS, auditRows),
    ...answerStatements(answers),
    ...saleStatements(sale, now),
  ];
  if (hooksDue.runs.length === 0) {
    await runAll(m, [...paymentRows, moveOrders, ...hooksDue.statements, ...rest]); // one round trip for all of it
  } else {
    // A hook reads what the tender wrote (the cash payment): the payments first.
    await runAll(m, [...paymentRows, moveOrders, ...hooksDue.statements]);
    for (const { hook, order } of hooksDue.runs) await hook.run!(m, order, now);
    await runAll(m, rest);
  }
  return outcomes;
}
