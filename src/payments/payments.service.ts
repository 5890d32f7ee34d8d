import { EventEmitter } from 'node:events';
import { EntityManager, In } from 'typeorm';
import { Db, Stmt, exec, rows, runAll } from '../db/db';
import { lockOpenShifts, noOpenShift, openShiftsStatements } from '../shifts/shift-lock';
import { audit } from '../audit/audit.service';
import { Clock, chinaTimestamp } from '../shared/clock';
import { DomainError, conflict, notFound, unprocessable } from '../shared/errors';
import { newId, newPaymentReference } from '../shared/ids';
import { InventoryService } from '../inventory/inventory.service';
import { OrdersService, cashRoundedDue } from '../orders/orders.service';
import { Order } from '../orders/order.entity';
import { moveOrder } from '../orders/order-state';
import { Payment, PaymentMethod, PaymentStatus, RefundState, TerminalReversal } from './payment.entity';
import { LIVE_PAYMENT_STATUSES, movePayment } from './payment-state';
import { decodeCursor, encodeCursor } from './cursor';
import { Evidence, EvidenceItem, parseEvidence } from './evidence';

export { owedFenOf } from './evidence';
export type { Evidence, EvidenceItem } from './evidence';
import { Batcher, Outcome } from '../db/batch';
import { SettleVerdict, applyVerdicts } from './settle-batch';
import { BatchObserver, BatchSettings, batchSettingsFromEnv } from '../orders/order-batcher';
import { CashTender, cashBatcher } from './cash-batcher';
import { AnswerSlot, answerCommitted, storeAnswers } from '../http/idempotency';
import { wrongLane } from '../http/auth';

/** What a cash tender's request brings beside its body. */
export interface CashOptions {
  /** Its Idempotency-Key answer, stored in the payment's own transaction. */
  answer?: AnswerSlot;
  /** A lane-bound key's lane: the order must be on it (403 wrong_lane), checked under the order's lock. */
  boundLane?: string;
}

export interface TenderInput {
  method: PaymentMethod;
  amountFen: number;
  lane: string;
  acceptUnknownCard?: boolean;
}

/** What we learnt about an approved card transaction, from the terminal or the acquirer. */
export interface ApprovalFacts {
  rc?: string | null;
  rm?: string | null;
  cardMasked?: string | null;
  cardType?: string | null;
  terminalId?: string | null;
  merchantId?: string | null;
  batchNo?: string | null;
  traceNo?: string | null;
  rrn?: string | null;
  authCode?: string | null;
  terminalTime?: string | null;
  settleDate?: string | null;
  queryId?: string | null;
}

export interface PaymentView {
  id: string;
  orderId: string;
  method: PaymentMethod;
  amountFen: number;
  status: PaymentStatus;
  lane: string | null;
  rf: string | null;
  txnTime: string | null;
  rc: string | null;
  rm: string | null;
  reason: string | null;
  prompts: string[];
  card: { masked: string | null; type: string | null } | null;
  terminal: {
    terminalId: string | null;
    merchantId: string | null;
    batchNo: string | null;
    traceNo: string | null;
    rrn: string | null;
    authCode: string | null;
    time: string | null;
  } | null;
  settleDate: string | null;
  queryId: string | null;
  refund: { state: string; amountFen: number | null } | null;
  heldSeconds: number | null;
  nextCheckAt: string | null;
  checks: number;
  resolution: { by: string | null; note: string | null } | null;
  /** The terminal holds a reversal of this sale (RC 98 / Q0 `P`): no acquirer answer settles it approved meanwhile. */
  terminalReversal: TerminalReversal | null;
  /** Verified answers that contradict a final status (see `disputed`). */
  evidence: Evidence | null;
  createdAt: string;
  updatedAt: string;
}

export interface PaymentFilter {
  status?: PaymentStatus;
  refund?: RefundState;
  rf?: string;
  lane?: string;
  /** Created at or after / before (epoch ms). */
  from?: number;
  to?: number;
  limit?: number;
  cursor?: string;
}

export type ResolveOutcome = 'approved' | 'declined' | 'refund';

/**
 * Work done in the transaction that marks an order paid. `appliesTo` says, without the database,
 * whether the hook has anything to do for an order. A hook either `run`s (it may read), or gives its
 * writes as `statements`, sent with the paying transaction's other writes in one round trip
 * (db.runAll) after the payment rows; a cash batch with only such hooks takes one round trip for all.
 */
export type OrderPaidHook = { appliesTo(order: Order): boolean } & (
  | { run(m: EntityManager, order: Order, now: number): Promise<void>; statements?: never }
  | { statements(order: Order, now: number): Stmt[]; run?: never }
);

/** Starts the terminal side of a card attempt once it is committed as `pending`. */
export interface CardDriver {
  hasLane(lane: string): boolean;
  /** This instance holds the lane's lease (one instance drives a terminal at a time). */
  drivesLane(lane: string): Promise<boolean>;
  isLaneIdle(lane: string): boolean;
  start(payment: Payment): void;
}

/**
 * Tenders and their outcomes. Every status change goes through movePayment's table, in a
 * transaction with its effect on the order and the stock; the terminal is driven only after the
 * attempt is committed, and never inside a transaction.
 */
export class PaymentsService {
  private readonly changes = new EventEmitter();
  private cardDriver: CardDriver | null = null;
  private readonly paidHooks: OrderPaidHook[] = [];
  private readonly cash: Batcher<CashTender, PaymentView> | null;
  private batchObserver: BatchObserver | undefined;
  private shiftLocks = false;

  constructor(
    private readonly db: Db,
    private readonly inventory: InventoryService,
    private readonly orders: OrdersService,
    private readonly clock: Clock,
    batch: BatchSettings = batchSettingsFromEnv(db.kind),
  ) {
    this.changes.setMaxListeners(0);
    this.cash = batch.enabled
      ? cashBatcher({
          db,
          settings: batch,
          paidHooks: this.paidHooks,
          cashRounding: () => this.orders.cashRounding,
          now: () => this.clock.now().getTime(),
          toView: (p) => this.toView(p),
          applyOne: (t) => this.tenderOne(t.orderId, t.input, t.actor, t),
          observe: (info) => this.batchObserver?.(info),
          shiftLocks: () => this.shiftLocks,
        })
      : null;
  }

  /**
   * POS_SHIFTS=on: the transactions that confirm money on a lane (cash tenders, card approvals) share-lock
   * its open shift first, and a cash tender without one is refused (shifts/shift-lock.ts).
   */
  lockShifts(): void {
    this.shiftLocks = true;
  }

  /**
   * The time to stamp on money confirmed on these lanes in `m`'s transaction (a card approval, a disputed
   * payment approved by a person, a refund leg approved or paid out in cash, a card refund done): with POS_SHIFTS=on the lanes' open shifts are share-locked first, so the time
   * falls inside the window of the shift whose Z report counts it, or after a close that is under way
   * (shifts/shift-lock.ts). Money going back is never refused for want of a shift.
   */
  async moneyTime(m: EntityManager, lanes: (string | null)[]): Promise<number> {
    const locks = this.shiftStatements(lanes);
    if (locks.length) await runAll(m, locks);
    return this.clock.now().getTime();
  }

  /** With POS_SHIFTS=on, the statements that lock these lanes' open shifts (shift-lock.ts); else none. */
  private shiftStatements(lanes: (string | null)[]): Stmt[] {
    const known = lanes.filter((l): l is string => !!l);
    return this.shiftLocks && known.length ? openShiftsStatements(this.db, known) : [];
  }

  /** Resolves when no cash batch is queued or in flight. */
  async idle(): Promise<void> {
    await this.cash?.idle();
  }

  /** Sees every cash batch (size, seconds, whether it fell back to one tender at a time). */
  observeBatches(fn: BatchObserver): void {
    this.batchObserver = fn;
  }

  useCardDriver(driver: CardDriver): void {
    this.cardDriver = driver;
  }

  /** Runs inside the transaction that marks an order paid (ticketing issues its tickets there, exactly once). */
  onOrderPaid(hook: OrderPaidHook): void {
    this.paidHooks.push(hook);
  }

  /**
   * With `answer` (the request's Idempotency-Key), the answer is stored in the payment's own transaction:
   * a cash tender's as approved, a card tender's as the pending attempt it started (the terminal's outcome
   * is read from the payment afterwards), so a retry after a crash replays it and never starts a second one.
   */
  async tender(orderId: string, input: TenderInput, actor: string, opts: CashOptions = {}): Promise<PaymentView> {
    const slot = opts.answer;
    // A lane-bound key's lane is checked under the order's lock for cash; a card's lane is the terminal's.
    const own: CashOptions = input.method === 'cash' ? opts : { answer: slot };
    // Cash is decided on the spot: batched with concurrent cash tenders, answered after their commit.
    const view =
      input.method === 'cash' && this.cash
        ? await this.cash.submit({ orderId, input, actor, answer: slot, boundLane: opts.boundLane })
        : await this.tenderOne(orderId, input, actor, own);
    answerCommitted(slot);
    return view;
  }

  private async tenderOne(
    orderId: string,
    input: TenderInput,
    actor: string,
    { answer, boundLane }: CashOptions = {},
  ): Promise<PaymentView> {
    if (input.method === 'card') {
      if (!this.cardDriver?.hasLane(input.lane))
        throw unprocessable('unknown_lane', `no card terminal is configured on lane ${input.lane}`, {
          lane: input.lane,
        });
      if (!(await this.cardDriver.drivesLane(input.lane))) {
        throw conflict(
          'lane_not_driven',
          `another service instance drives the terminal on lane ${input.lane}; take the card there or wait for its lease to end`,
          { lane: input.lane },
        );
      }
      if (!this.cardDriver.isLaneIdle(input.lane))
        throw conflict('terminal_busy', `the terminal on lane ${input.lane} is busy with another request; try again`, {
          lane: input.lane,
        });
    }
    const payment = await this.db.tx(async (m) => {
      if (this.shiftLocks && input.method === 'cash') {
        // The lane's open shift share-locked before the sale's time is read (shifts/shift-lock.ts).
        if (!(await lockOpenShifts(m, this.db, [input.lane])).has(input.lane)) throw noOpenShift(input.lane);
      }
      const now = this.clock.now().getTime();
      const order = await this.orders.lockOrder(m, orderId);
      if (boundLane && order.lane !== boundLane) throw wrongLane(boundLane, order.lane);
      if (order.status !== 'reserved')
        throw conflict('order_not_payable', `order ${orderId} is ${order.status}`, { status: order.status });
      const live = await m.find(Payment, { where: { orderId, status: In(LIVE_PAYMENT_STATUSES as PaymentStatus[]) } });
      const pending = live.find((p) => p.status === 'pending');
      if (pending)
        throw conflict('payment_in_progress', 'a card payment is in progress at the terminal', {
          paymentId: pending.id,
          status: pending.status,
        });
      if (live.length && !input.acceptUnknownCard) {
        throw conflict(
          'payment_in_progress',
          'a card payment of this order has an unknown outcome; take another tender only with acceptUnknownCard: true',
          { payments: live.map((p) => ({ id: p.id, status: p.status })) },
        );
      }
      // Cash rounding (抹零): a cash-only payment of the rounded total drops the odd fen, recorded on the order.
      const rounded =
        input.method === 'cash' && live.length === 0 ? cashRoundedDue(this.orders.cashRounding, order) : null;
      if (rounded !== null && input.amountFen === rounded) {
        await exec(m, 'UPDATE orders SET rounding_fen = ? WHERE id = ? AND rounding_fen = 0 AND paid_fen = 0', [
          order.totalFen - rounded,
          orderId,
        ]);
        order.roundingFen = order.totalFen - rounded;
      }
      const outstanding = order.totalFen - order.roundingFen - order.paidFen;
      if (input.amountFen > outstanding) {
        throw unprocessable('amount_exceeds_balance', `the order has ${outstanding} fen left to pay`, {
          outstandingFen: outstanding,
          amountFen: input.amountFen,
        });
      }
      const p: Payment = Object.assign(new Payment(), {
        id: newId(),
        orderId,
        method: input.method,
        amountFen: input.amountFen,
        lane: input.lane,
        status: (input.method === 'cash' ? 'approved' : 'pending') as PaymentStatus,
        rf: input.method === 'card' ? newPaymentReference(new Date(now)) : null,
        txnTime: input.method === 'card' ? chinaTimestamp(new Date(now)) : null,
        acked: false,
        checks: 0,
        createdBy: actor,
        createdAt: now,
        updatedAt: now,
        finishedAt: input.method === 'cash' ? now : null,
      });
      await m.insert(Payment, p);
      await audit(m, {
        actor,
        entity: 'payment',
        entityId: p.id,
        action: 'tender',
        after: { orderId, method: p.method, amountFen: p.amountFen, status: p.status, rf: p.rf },
        at: now,
      });
      if (p.status === 'approved') await this.applyApproval(m, order, p, actor, now);
      // A card tender's answer is the attempt as committed (`pending`), read here: read after the commit, it
      // would race the terminal, started below, and a terminal that declines at once made some answers say
      // `declined`; and a read that failed after the commit would leave the attempt pending with no terminal.
      if (!answer && p.method !== 'card') return { p, view: null };
      // The answer as a read after the commit would give it, stored with the payment when keyed.
      const view = this.toView(await this.paymentIn(m, p.id));
      if (answer) await storeAnswers(m, [{ slot: answer, body: view }]);
      return { p, view };
    });
    if (payment.p.method === 'card') this.cardDriver!.start(payment.p);
    this.notify(payment.p.id);
    return payment.view ?? this.view(payment.p.id);
  }

  /** The terminal ACKed the request: from now on silence means `unknown`, and Q0 `N` is not a failure. */
  async markAcked(paymentId: string): Promise<void> {
    await this.db.tx((m) =>
      exec(m, 'UPDATE payment SET acked = 1, updated_at = ? WHERE id = ?', [this.clock.now().getTime(), paymentId]),
    );
  }

  async addPrompt(paymentId: string, text: string): Promise<void> {
    await this.db.tx(async (m) => {
      const p = await m.findOne(Payment, { where: { id: paymentId } });
      if (!p) return;
      const prompts: string[] = p.prompts ? JSON.parse(p.prompts) : [];
      prompts.push(text);
      await exec(m, 'UPDATE payment SET prompts = ?, updated_at = ? WHERE id = ?', [
        JSON.stringify(prompts.slice(-20)),
        this.clock.now().getTime(),
        paymentId,
      ]);
    });
    this.notify(paymentId);
  }

  /** A confirmed approval (terminal, acquirer or a person). Sells the stock when tenders cover the order. */
  async settleApproved(
    paymentId: string,
    facts: ApprovalFacts,
    actor: string,
    note?: string,
    opts: { checked?: boolean } = {},
  ): Promise<void> {
    await this.db.tx((m) => this.settleApprovedIn(m, paymentId, facts, actor, note, opts));
    this.notify(paymentId);
  }

  /** `settleApproved`'s unit of work inside a transaction the caller owns; the caller calls `changed(paymentId)` once it has committed. */
  async settleApprovedIn(
    m: EntityManager,
    paymentId: string,
    facts: ApprovalFacts,
    actor: string,
    note?: string,
    opts: { checked?: boolean } = {},
  ): Promise<void> {
    const { orderId, lane } = await this.orderOf(m, paymentId);
    await this.settleOneIn(m, {
      kind: 'approve',
      paymentId,
      orderId,
      lane,
      facts,
      actor,
      note,
      checked: opts.checked,
    });
  }

  /** A confirmed failure: declined, not executed, or reversed. The order keeps its reservation for another try. */
  async settleFailed(
    paymentId: string,
    to: 'declined' | 'reversed',
    info: { rc?: string | null; rm?: string | null; reason: string },
    actor: string,
    note?: string,
    opts: { checked?: boolean; terminalReversal?: TerminalReversal } = {},
  ): Promise<void> {
    await this.db.tx((m) => this.settleOneIn(m, { kind: 'fail', paymentId, to, info, actor, note, ...opts }));
    this.notify(paymentId);
  }

  /**
   * Verdicts on many card attempts in the caller's transaction (the sweeper's group commit; see
   * settle-batch.ts): one outcome per verdict, a refusal being that verdict's alone. The caller calls
   * `changed(paymentId)` for each once the transaction has committed.
   */
  settleManyIn(m: EntityManager, verdicts: SettleVerdict[], first: Stmt[] = []): Promise<Outcome<boolean>[]> {
    return applyVerdicts(
      m,
      this.db,
      verdicts,
      (lanes) => this.shiftStatements(lanes),
      () => this.clock.now().getTime(),
      this.paidHooks,
      first,
    );
  }

  /** One verdict: its refusal is thrown. Resolves to whether a recheck parked the attempt in suspense. */
  async settleOneIn(m: EntityManager, verdict: SettleVerdict): Promise<boolean> {
    const [outcome] = await this.settleManyIn(m, [verdict]);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** The payment's order and lane (neither ever changes). */
  private async orderOf(m: EntityManager, paymentId: string): Promise<{ orderId: string; lane: string | null }> {
    const [r] = await rows<{ order_id: string; lane: string | null }>(
      m,
      'SELECT order_id, lane FROM payment WHERE id = ?',
      [paymentId],
    );
    if (!r) throw notFound('payment', paymentId);
    return { orderId: r.order_id, lane: r.lane };
  }

  /** No confirmed outcome: the stock stays held and the sweeper takes over. */
  async markUnknown(
    paymentId: string,
    info: { rc?: string | null; rm?: string | null; reason: string; acked?: boolean },
    actor: string,
  ): Promise<void> {
    await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const p = await this.paymentIn(m, paymentId);
      const set: Record<string, string | number | null> = {
        unknown_since: now,
        next_check_at: now + 1000,
        checks: 0,
        reason: info.reason.slice(0, 255),
      };
      if (info.rc != null) set.rc = info.rc;
      if (info.rm != null) set.rm = info.rm.slice(0, 128);
      if (info.acked !== undefined) set.acked = info.acked ? 1 : 0;
      // RC 98: the terminal will reverse this sale before its next online transaction; until that is settled an acquirer "approved" is not final.
      if (info.rc === '98') set.terminal_reversal = 'pending';
      await movePayment(m, paymentId, p.status, 'unknown', now, set);
      await audit(m, {
        actor,
        entity: 'payment',
        entityId: paymentId,
        action: 'unknown',
        before: { status: p.status },
        after: { status: 'unknown', ...info },
        at: now,
      });
    });
    this.notify(paymentId);
  }

  /** After a restart nobody is listening to the terminal any more: a `pending` attempt's outcome is unknown, never declined. */
  /**
   * Called only with lanes whose lease this instance has just won: nobody is listening to those
   * terminals any more, so a `pending` attempt's outcome is unknown, never declined.
   */
  async recoverInterrupted(lanes: string[], except: (paymentId: string) => boolean = () => false): Promise<number> {
    if (lanes.length === 0) return 0;
    const stuck = await this.db.read((m) =>
      m.find(Payment, { where: { status: 'pending', method: 'card', lane: In(lanes) } }),
    );
    let n = 0;
    for (const p of stuck) {
      if (except(p.id)) continue;
      // Whether the terminal ACKed died with the process: take it as accepted, so a journal's `N` is never read as a failure.
      await this.markUnknown(p.id, { reason: 'interrupted_by_restart', acked: true }, 'system:recovery').then(
        () => n++,
        () => undefined,
      );
    }
    return n;
  }

  /**
   * A person settles an attempt. `unknown`/`suspense`: approved or declined. `disputed`: approved
   * (the goods are sold if the order can still be paid, otherwise the money is owed back) or refund
   * (the money is owed back). On a status that is already final the first answer stands: the
   * person's word is recorded as evidence and, when it disagrees, the payment becomes `disputed`.
   */
  /**
   * A person's way out for a refund the machines cannot finish: `unknown` (the terminal and the acquirer
   * cannot tell), `failed` or `manual` (to be given back by hand). `done` says the money went back (the
   * acquirer confirmed it, or it was paid by hand); audited with the note. 409 `refund_not_resolvable`
   * otherwise (no refund, one still queued or at the terminal, or done already).
   */
  async resolveRefund(paymentId: string, note: string, actor: string): Promise<PaymentView> {
    await this.db.tx(async (m) => {
      const p = await m.findOne(Payment, { where: { id: paymentId } });
      if (!p) throw notFound('payment', paymentId);
      const now = await this.moneyTime(m, [p.lane]);
      const n = await exec(
        m,
        "UPDATE payment SET refund_state = 'done', updated_at = ? WHERE id = ? AND refund_state IN ('unknown', 'failed', 'manual')",
        [now, paymentId],
      );
      if (n !== 1)
        throw conflict(
          'refund_not_resolvable',
          p.refundState
            ? `this payment's refund is ${p.refundState}; only an unknown, failed or manual refund is settled by a person`
            : 'this payment has no refund',
          { refundState: p.refundState },
        );
      await audit(m, {
        actor,
        entity: 'payment',
        entityId: paymentId,
        action: 'refund_resolve',
        before: { state: p.refundState, amountFen: p.refundFen },
        after: { state: 'done', note },
        at: now,
      });
    });
    this.notify(paymentId);
    return this.view(paymentId);
  }

  async resolve(paymentId: string, outcome: ResolveOutcome, note: string, actor: string): Promise<PaymentView> {
    const p = await this.db.read((m) => m.findOne(Payment, { where: { id: paymentId } }));
    if (!p) throw notFound('payment', paymentId);
    if (p.status === 'pending')
      throw conflict('payment_not_resolvable', 'the terminal is still working on this payment', { status: p.status });
    if (p.status === 'unknown' || p.status === 'suspense') {
      if (outcome === 'refund')
        throw unprocessable(
          'refund_needs_dispute',
          'a payment with an unknown outcome is resolved approved or declined; refund is for a disputed payment',
          { status: p.status },
        );
      try {
        if (outcome === 'approved') await this.settleApproved(paymentId, {}, actor, note);
        else await this.settleFailed(paymentId, 'declined', { reason: 'resolved_by_hand' }, actor, note);
        return this.view(paymentId);
      } catch (err) {
        // The sweeper confirmed it first: fall through to the race rules below.
        if (!(err instanceof DomainError) || !['payment_changed', 'payment_transition_refused'].includes(err.code))
          throw err;
      }
    }
    if ((await this.view(paymentId)).status === 'disputed') {
      if (outcome === 'declined')
        throw unprocessable(
          'disputed_needs_decision',
          'a disputed payment was charged: resolve it approved (sell the goods) or refund (give the money back)',
          {},
        );
      await this.settleDisputed(paymentId, outcome, note, actor);
      return this.view(paymentId);
    }
    // Already final by another hand: first wins; this answer is recorded, and a disagreement is disputed.
    const says = outcome === 'declined' ? 'not_charged' : 'charged';
    const r = await this.contest(paymentId, says, { source: 'resolve', detail: { outcome, note } }, actor);
    const now = await this.view(paymentId);
    throw conflict(
      'payment_already_final',
      r === 'not_applicable'
        ? `this payment is already ${now.status}; your answer is recorded`
        : `this payment was already ${now.evidence?.from ?? 'final'} and your answer disagrees: it is now disputed for a person to decide`,
      { status: now.status, recorded: true, disputed: r !== 'not_applicable' },
    );
  }

  /**
   * Verified evidence that a payment was charged (terminal query `A`, acquirer approved, a refused
   * reversal, the T+1 file). A `declined`/`reversed` payment becomes `disputed`: the order shows the
   * money as owed and a person decides. Approved or still live: not applicable (a live one is simply
   * settled approved by its caller).
   */
  dispute(
    paymentId: string,
    evidence: { source: 'terminal' | 'acquirer' | 'reversal' | 'recon' | 'resolve'; detail: Record<string, unknown> },
    actor: string,
  ): Promise<'disputed' | 'already_disputed' | 'not_applicable'> {
    return this.contest(paymentId, 'charged', evidence, actor);
  }

  /** Evidence in either direction against a final status; agreeing evidence changes nothing. */
  async contest(
    paymentId: string,
    says: EvidenceItem['says'],
    evidence: { source: EvidenceItem['source']; detail: Record<string, unknown> },
    actor: string,
  ): Promise<'disputed' | 'already_disputed' | 'not_applicable'> {
    const result = await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      // Row lock first: evidence is appended to a JSON column, and two answers arriving together must both be kept.
      await rows(m, `SELECT id FROM payment WHERE id = ?${this.db.forUpdate}`, [paymentId]);
      const p = await this.paymentIn(m, paymentId);
      const item: EvidenceItem = {
        source: evidence.source,
        detail: evidence.detail,
        says,
        actor,
        at: new Date(now).toISOString(),
      };
      const against = says === 'charged' ? p.status === 'declined' || p.status === 'reversed' : p.status === 'approved';
      if (p.status === 'disputed') {
        const ev = parseEvidence(p.evidence) ?? { from: p.status, items: [] };
        ev.items.push(item);
        const n = await exec(
          m,
          "UPDATE payment SET evidence = ?, updated_at = ? WHERE id = ? AND status = 'disputed'",
          [JSON.stringify(ev), now, paymentId],
        );
        if (n !== 1) throw conflict('payment_changed', `payment ${paymentId} changed meanwhile`, { paymentId });
        await audit(m, { actor, entity: 'payment', entityId: paymentId, action: 'evidence', after: item, at: now });
        return 'already_disputed' as const;
      }
      if (!against) {
        // Agrees with the status (or the attempt is still live): recorded, nothing changes.
        await audit(m, {
          actor,
          entity: 'payment',
          entityId: paymentId,
          action: 'evidence',
          before: { status: p.status },
          after: item,
          at: now,
        });
        return 'not_applicable' as const;
      }
      const ev: Evidence = { from: p.status, items: [item] };
      await movePayment(m, paymentId, p.status, 'disputed', now, {
        evidence: JSON.stringify(ev),
        next_check_at: null,
        claimed_by: null,
        claim_until: null,
        reason: says === 'charged' ? 'charged_after_final_failure' : 'not_charged_after_approval',
      });
      await audit(m, {
        actor,
        entity: 'payment',
        entityId: paymentId,
        action: 'disputed',
        before: { status: p.status },
        after: { status: 'disputed', evidence: item },
        at: now,
      });
      return 'disputed' as const;
    });
    this.notify(paymentId);
    return result;
  }

  /** A person's decision on a disputed payment. The money was taken either way, so it ends `approved`. */
  private async settleDisputed(
    paymentId: string,
    outcome: 'approved' | 'refund',
    note: string,
    actor: string,
  ): Promise<void> {
    await this.db.tx(async (m) => {
      await rows(m, `SELECT id FROM payment WHERE id = ?${this.db.forUpdate}`, [paymentId]);
      const p = await this.paymentIn(m, paymentId);
      // Approved now: a sale on its lane's shift report, stamped after the shift lock (shifts/shift-lock.ts).
      const now = await this.moneyTime(m, [p.lane]);
      const ev = parseEvidence(p.evidence) ?? { from: 'declined' as PaymentStatus, items: [] };
      ev.items.push({
        source: 'resolve',
        detail: { outcome, note },
        says: 'charged',
        actor,
        at: new Date(now).toISOString(),
      });
      const order = await this.orders.lockOrder(m, p.orderId);
      if (outcome === 'refund') {
        // A refund of this payment made already (an overpaid excess, a return's leg) would be paid a second time
        // by a full refund: the person settles what is left by hand, or resolves `approved` and takes a return.
        const legs = await rows<{ fen: unknown }>(
          m,
          'SELECT COALESCE(SUM(amount_fen), 0) AS fen FROM refund_leg WHERE payment_id = ?',
          [paymentId],
        );
        const legFen = Number(legs[0]?.fen ?? 0); // every leg gives back a positive amount
        if (p.refundState || legFen > 0)
          throw conflict(
            'refund_exists',
            `this payment has been refunded in part already (${p.refundState ? `refund ${p.refundState}, ${p.refundFen ?? 0} fen` : `${legFen} fen in return legs`}); refunding it in full would pay that twice`,
            { refundState: p.refundState, refundFen: p.refundFen, legFen },
          );
      }
      await movePayment(m, paymentId, 'disputed', 'approved', now, {
        evidence: JSON.stringify(ev),
        resolution_note: note,
        resolved_by: actor,
        reason: null,
        finished_at: now,
      });
      await audit(m, {
        actor,
        entity: 'payment',
        entityId: paymentId,
        action: 'resolve',
        before: { status: 'disputed', from: ev.from },
        after: { status: 'approved', outcome, note },
        at: now,
      });
      if (outcome === 'approved' && ev.from !== 'approved') {
        await this.applyApproval(m, order, p, actor, now);
      } else if (outcome === 'refund') {
        // Owed back in full; when it was counted towards the order before (disputed from approved) the order keeps its sale.
        await exec(m, 'UPDATE orders SET overpaid_fen = overpaid_fen + ?, updated_at = ? WHERE id = ?', [
          p.amountFen,
          now,
          order.id,
        ]);
        await this.queueRefund(m, p, p.amountFen, now);
        await audit(m, {
          actor,
          entity: 'order',
          entityId: order.id,
          action: 'overpaid',
          after: { paymentId: p.id, amountFen: p.amountFen, orderStatus: order.status, why: 'disputed_refund' },
          at: now,
        });
      }
    });
    this.notify(paymentId);
  }

  /** Applies an approved tender to its order: paid once covered (stock sold once), or overpaid with a refund queued. */
  private async applyApproval(m: EntityManager, order: Order, p: Payment, actor: string, now: number): Promise<void> {
    if (order.status === 'reserved') {
      const paid = order.paidFen + p.amountFen;
      const due = order.totalFen - order.roundingFen;
      const excess = Math.max(0, paid - due);
      await exec(m, 'UPDATE orders SET paid_fen = ?, overpaid_fen = overpaid_fen + ?, updated_at = ? WHERE id = ?', [
        paid,
        excess,
        now,
        order.id,
      ]);
      if (excess > 0) await this.queueRefund(m, p, excess, now);
      if (paid >= due) {
        await moveOrder(m, order.id, 'reserved', 'paid', now);
        for (const hook of this.paidHooks) {
          if (!hook.appliesTo(order)) continue;
          if (hook.run) await hook.run(m, order, now);
          else await runAll(m, hook.statements(order, now));
        }
        await audit(m, {
          actor,
          entity: 'order',
          entityId: order.id,
          action: 'paid',
          before: { status: 'reserved' },
          after: { status: 'paid', paidFen: paid },
          at: now,
        });
        // Last: the stock rows are the contended ones.
        await this.inventory.commitSale(m, order.id, actor);
      }
      return;
    }
    // The order was settled meanwhile (paid by another tender, or ended): this money is not owed.
    await exec(m, 'UPDATE orders SET overpaid_fen = overpaid_fen + ?, updated_at = ? WHERE id = ?', [
      p.amountFen,
      now,
      order.id,
    ]);
    await this.queueRefund(m, p, p.amountFen, now);
    await audit(m, {
      actor,
      entity: 'order',
      entityId: order.id,
      action: 'overpaid',
      after: { paymentId: p.id, amountFen: p.amountFen, orderStatus: order.status },
      at: now,
    });
  }

  private async queueRefund(m: EntityManager, p: Payment, amountFen: number, now: number): Promise<void> {
    if (p.method !== 'card') return; // cash change is given at the till
    await exec(m, "UPDATE payment SET refund_state = 'queued', refund_fen = ?, updated_at = ? WHERE id = ?", [
      amountFen,
      now,
      p.id,
    ]);
  }

  async get(id: string, waitSeconds = 0): Promise<PaymentView> {
    const deadline = Date.now() + Math.min(Math.max(waitSeconds, 0), 60) * 1000;
    for (;;) {
      const v = await this.view(id);
      const left = deadline - Date.now();
      if (v.status !== 'pending' || left <= 0) return v;
      await this.waitForChange(id, Math.min(left, 500));
    }
  }

  /** What is held (status) or what still owes a customer money back (refund state), oldest first. */
  async list(status?: PaymentStatus, limit = 500, refund?: RefundState): Promise<PaymentView[]> {
    return (await this.page({ status, refund, limit })).items;
  }

  /** Payments matching every filter, oldest first, a page at a time; `nextCursor` is null on the last page. */
  async page(f: PaymentFilter): Promise<{ items: PaymentView[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(f.limit ?? 100, 1), 500);
    const qb = this.db.ds.createQueryBuilder(Payment, 'p');
    if (f.status) qb.andWhere('p.status = :status', { status: f.status });
    if (f.refund) qb.andWhere('p.refund_state = :refund', { refund: f.refund });
    if (f.rf) qb.andWhere('(p.rf = :rf OR p.refund_rf = :rf)', { rf: f.rf });
    if (f.lane) qb.andWhere('p.lane = :lane', { lane: f.lane });
    if (f.from !== undefined) qb.andWhere('p.created_at >= :from', { from: f.from });
    if (f.to !== undefined) qb.andWhere('p.created_at < :to', { to: f.to });
    if (f.cursor) {
      const c = decodeCursor(f.cursor);
      qb.andWhere('(p.created_at > :cAt OR (p.created_at = :cAt AND p.id > :cId))', { cAt: c.at, cId: c.id });
    }
    qb.orderBy('p.created_at', 'ASC')
      .addOrderBy('p.id', 'ASC')
      .take(limit + 1);
    const found = await this.db.read(() => qb.getMany());
    const more = found.length > limit;
    const items = found.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items: items.map((p) => this.toView(p)),
      nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null,
    };
  }

  async view(id: string): Promise<PaymentView> {
    const p = await this.db.read((m) => m.findOne(Payment, { where: { id } }));
    if (!p) throw notFound('payment', id);
    return this.toView(p);
  }

  private async paymentIn(m: EntityManager, id: string): Promise<Payment> {
    const p = await m.findOne(Payment, { where: { id } });
    if (!p) throw notFound('payment', id);
    return p;
  }

  /** Calls `fn` after every committed change of the payment (status, prompts); returns the unsubscribe. */
  subscribe(id: string, fn: () => void): () => void {
    this.changes.on(id, fn);
    return () => {
      this.changes.off(id, fn);
    };
  }

  /** Wakes whoever waits on this payment (long polls); for units of work committed outside this service. */
  changed(id: string): void {
    this.notify(id);
  }

  private notify(id: string): void {
    this.changes.emit(id);
  }

  private waitForChange(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.changes.off(id, done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.changes.on(id, done);
    });
  }

  toView(p: Payment): PaymentView {
    const now = this.clock.now().getTime();
    const iso = (t: number | null) => (t == null ? null : new Date(t).toISOString());
    const card = p.method === 'card';
    return {
      id: p.id,
      orderId: p.orderId,
      method: p.method,
      amountFen: p.amountFen,
      status: p.status,
      lane: p.lane,
      rf: p.rf,
      txnTime: p.txnTime,
      rc: p.rc,
      rm: p.rm,
      reason: p.reason,
      prompts: p.prompts ? JSON.parse(p.prompts) : [],
      card: card ? { masked: p.cardMasked, type: p.cardType } : null,
      terminal: card
        ? {
            terminalId: p.terminalId,
            merchantId: p.merchantId,
            batchNo: p.batchNo,
            traceNo: p.traceNo,
            rrn: p.rrn,
            authCode: p.authCode,
            time: p.terminalTime,
          }
        : null,
      settleDate: p.settleDate,
      queryId: p.queryId,
      refund: p.refundState ? { state: p.refundState, amountFen: p.refundFen } : null,
      heldSeconds:
        p.status === 'unknown' || p.status === 'suspense'
          ? Math.round((now - (p.unknownSince ?? p.createdAt)) / 1000)
          : null,
      nextCheckAt: iso(p.nextCheckAt),
      checks: p.checks,
      resolution: p.resolvedBy ? { by: p.resolvedBy, note: p.resolutionNote } : null,
      terminalReversal: p.terminalReversal,
      evidence: parseEvidence(p.evidence),
      createdAt: new Date(p.createdAt).toISOString(),
      updatedAt: new Date(p.updatedAt).toISOString(),
    };
  }
}

export { DomainError };
