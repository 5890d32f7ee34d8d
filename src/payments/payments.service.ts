import { EventEmitter } from 'node:events';
import { EntityManager, FindOptionsWhere, In } from 'typeorm';
import { Db, exec } from '../db/db';
import { audit } from '../audit/audit.service';
import { Clock, chinaTimestamp } from '../shared/clock';
import { DomainError, conflict, notFound, unprocessable } from '../shared/errors';
import { newId, newPaymentReference } from '../shared/ids';
import { InventoryService } from '../inventory/inventory.service';
import { OrdersService, cashRoundedDue } from '../orders/orders.service';
import { Order } from '../orders/order.entity';
import { moveOrder } from '../orders/order-state';
import { Payment, PaymentMethod, PaymentStatus, RefundState } from './payment.entity';
import { LIVE_PAYMENT_STATUSES, movePayment } from './payment-state';
import { Batcher } from '../db/batch';
import { BatchObserver, BatchSettings, batchSettingsFromEnv } from '../orders/order-batcher';
import { CashTender, cashBatcher } from './cash-batcher';

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
  terminal: { terminalId: string | null; merchantId: string | null; batchNo: string | null; traceNo: string | null; rrn: string | null; authCode: string | null; time: string | null } | null;
  settleDate: string | null;
  queryId: string | null;
  refund: { state: string; amountFen: number | null } | null;
  heldSeconds: number | null;
  nextCheckAt: string | null;
  checks: number;
  resolution: { by: string | null; note: string | null } | null;
  createdAt: string;
  updatedAt: string;
}

export type OrderPaidHook = (m: EntityManager, order: Order, now: number) => Promise<void>;

/** Starts the terminal side of a card attempt once it is committed as `pending`. */
export interface CardDriver {
  hasLane(lane: string): boolean;
  isLaneIdle(lane: string): boolean;
  start(payment: Payment): void;
}

const CARD_TERMINAL_FACTS: (keyof ApprovalFacts)[] = ['rc', 'rm', 'cardMasked', 'cardType', 'terminalId', 'merchantId', 'batchNo', 'traceNo', 'rrn', 'authCode', 'terminalTime', 'settleDate', 'queryId'];
const COLUMN: Record<keyof ApprovalFacts, string> = {
  rc: 'rc', rm: 'rm', cardMasked: 'card_masked', cardType: 'card_type', terminalId: 'terminal_id', merchantId: 'merchant_id',
  batchNo: 'batch_no', traceNo: 'trace_no', rrn: 'rrn', authCode: 'auth_code', terminalTime: 'terminal_time', settleDate: 'settle_date', queryId: 'query_id',
};

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

  constructor(
    private readonly db: Db,
    private readonly inventory: InventoryService,
    private readonly orders: OrdersService,
    private readonly clock: Clock,
    batch: BatchSettings = batchSettingsFromEnv(db.kind),
  ) {
    this.changes.setMaxListeners(0);
    this.cash = batch.enabled ? cashBatcher({
      db, settings: batch, paidHooks: this.paidHooks,
      cashRounding: () => this.orders.cashRounding,
      now: () => this.clock.now().getTime(),
      toView: (p) => this.toView(p),
      applyOne: (t) => this.tenderOne(t.orderId, t.input, t.actor),
      observe: (info) => this.batchObserver?.(info),
    }) : null;
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

  async tender(orderId: string, input: TenderInput, actor: string): Promise<PaymentView> {
    // Cash is decided on the spot: batched with concurrent cash tenders, answered after their commit.
    if (input.method === 'cash' && this.cash) return this.cash.submit({ orderId, input, actor });
    return this.tenderOne(orderId, input, actor);
  }

  private async tenderOne(orderId: string, input: TenderInput, actor: string): Promise<PaymentView> {
    if (input.method === 'card') {
      if (!this.cardDriver?.hasLane(input.lane)) throw unprocessable('unknown_lane', `no card terminal is configured on lane ${input.lane}`, { lane: input.lane });
      if (!this.cardDriver.isLaneIdle(input.lane)) throw conflict('terminal_busy', `the terminal on lane ${input.lane} is busy with another request; try again`, { lane: input.lane });
    }
    const payment = await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const order = await this.orders.lockOrder(m, orderId);
      if (order.status !== 'reserved') throw conflict('order_not_payable', `order ${orderId} is ${order.status}`, { status: order.status });
      const live = await m.find(Payment, { where: { orderId, status: In(LIVE_PAYMENT_STATUSES as PaymentStatus[]) } });
      const pending = live.find((p) => p.status === 'pending');
      if (pending) throw conflict('payment_in_progress', 'a card payment is in progress at the terminal', { paymentId: pending.id, status: pending.status });
      if (live.length && !input.acceptUnknownCard) {
        throw conflict('payment_in_progress', 'a card payment of this order has an unknown outcome; take another tender only with acceptUnknownCard: true',
          { payments: live.map((p) => ({ id: p.id, status: p.status })) });
      }
      // Cash rounding (抹零): a cash-only payment of the rounded total drops the odd fen, recorded on the order.
      const rounded = input.method === 'cash' && live.length === 0 ? cashRoundedDue(this.orders.cashRounding, order) : null;
      if (rounded !== null && input.amountFen === rounded) {
        await exec(m, 'UPDATE orders SET rounding_fen = ? WHERE id = ? AND rounding_fen = 0 AND paid_fen = 0', [order.totalFen - rounded, orderId]);
        order.roundingFen = order.totalFen - rounded;
      }
      const outstanding = order.totalFen - order.roundingFen - order.paidFen;
      if (input.amountFen > outstanding) {
        throw unprocessable('amount_exceeds_balance', `the order has ${outstanding} fen left to pay`, { outstandingFen: outstanding, amountFen: input.amountFen });
      }
      const p: Payment = Object.assign(new Payment(), {
        id: newId(), orderId, method: input.method, amountFen: input.amountFen, lane: input.lane,
        status: (input.method === 'cash' ? 'approved' : 'pending') as PaymentStatus,
        rf: input.method === 'card' ? newPaymentReference(new Date(now)) : null,
        txnTime: input.method === 'card' ? chinaTimestamp(new Date(now)) : null,
        acked: false, checks: 0, createdBy: actor, createdAt: now, updatedAt: now,
        finishedAt: input.method === 'cash' ? now : null,
      });
      await m.insert(Payment, p);
      await audit(m, { actor, entity: 'payment', entityId: p.id, action: 'tender', after: { orderId, method: p.method, amountFen: p.amountFen, status: p.status, rf: p.rf }, at: now });
      if (p.status === 'approved') await this.applyApproval(m, order, p, actor, now);
      return p;
    });
    if (payment.method === 'card') this.cardDriver!.start(payment);
    this.notify(payment.id);
    return this.view(payment.id);
  }

  /** The terminal ACKed the request: from now on silence means `unknown`, and Q0 `N` is not a failure. */
  async markAcked(paymentId: string): Promise<void> {
    await this.db.tx((m) => exec(m, 'UPDATE payment SET acked = 1, updated_at = ? WHERE id = ?', [this.clock.now().getTime(), paymentId]));
  }

  async addPrompt(paymentId: string, text: string): Promise<void> {
    await this.db.tx(async (m) => {
      const p = await m.findOne(Payment, { where: { id: paymentId } });
      if (!p) return;
      const prompts: string[] = p.prompts ? JSON.parse(p.prompts) : [];
      prompts.push(text);
      await exec(m, 'UPDATE payment SET prompts = ?, updated_at = ? WHERE id = ?', [JSON.stringify(prompts.slice(-20)), this.clock.now().getTime(), paymentId]);
    });
    this.notify(paymentId);
  }

  /** A confirmed approval (terminal, acquirer or a person). Sells the stock when tenders cover the order. */
  async settleApproved(paymentId: string, facts: ApprovalFacts, actor: string, note?: string): Promise<void> {
    await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const p = await this.paymentIn(m, paymentId);
      const order = await this.orders.lockOrder(m, p.orderId);
      const set: Record<string, string | number | null> = { finished_at: now, next_check_at: null, claimed_by: null, claim_until: null };
      for (const k of CARD_TERMINAL_FACTS) if (facts[k] != null) set[COLUMN[k]] = facts[k]!;
      if (note !== undefined) Object.assign(set, { resolution_note: note, resolved_by: actor });
      await movePayment(m, paymentId, p.status, 'approved', now, set);
      await audit(m, { actor, entity: 'payment', entityId: paymentId, action: note !== undefined ? 'resolve' : 'approve', before: { status: p.status }, after: { status: 'approved', note, ...facts }, at: now });
      await this.applyApproval(m, order, p, actor, now);
    });
    this.notify(paymentId);
  }

  /** A confirmed failure: declined, not executed, or reversed. The order keeps its reservation for another try. */
  async settleFailed(paymentId: string, to: 'declined' | 'reversed', info: { rc?: string | null; rm?: string | null; reason: string }, actor: string, note?: string): Promise<void> {
    await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const p = await this.paymentIn(m, paymentId);
      const set: Record<string, string | number | null> = { finished_at: now, next_check_at: null, claimed_by: null, claim_until: null, reason: info.reason.slice(0, 255) };
      if (info.rc != null) set.rc = info.rc;
      if (info.rm != null) set.rm = info.rm.slice(0, 128);
      if (note !== undefined) Object.assign(set, { resolution_note: note, resolved_by: actor });
      await movePayment(m, paymentId, p.status, to, now, set);
      await audit(m, { actor, entity: 'payment', entityId: paymentId, action: note !== undefined ? 'resolve' : to, before: { status: p.status }, after: { status: to, ...info, note }, at: now });
    });
    this.notify(paymentId);
  }

  /** No confirmed outcome: the stock stays held and the sweeper takes over. */
  async markUnknown(paymentId: string, info: { rc?: string | null; rm?: string | null; reason: string; acked?: boolean }, actor: string): Promise<void> {
    await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const p = await this.paymentIn(m, paymentId);
      const set: Record<string, string | number | null> = { unknown_since: now, next_check_at: now + 1000, checks: 0, reason: info.reason.slice(0, 255) };
      if (info.rc != null) set.rc = info.rc;
      if (info.rm != null) set.rm = info.rm.slice(0, 128);
      if (info.acked !== undefined) set.acked = info.acked ? 1 : 0;
      await movePayment(m, paymentId, p.status, 'unknown', now, set);
      await audit(m, { actor, entity: 'payment', entityId: paymentId, action: 'unknown', before: { status: p.status }, after: { status: 'unknown', ...info }, at: now });
    });
    this.notify(paymentId);
  }

  /** After a restart nobody is listening to the terminal any more: a `pending` attempt's outcome is unknown, never declined. */
  async recoverInterrupted(lanes: string[]): Promise<number> {
    if (lanes.length === 0) return 0;
    const stuck = await this.db.read((m) => m.find(Payment, { where: { status: 'pending', method: 'card', lane: In(lanes) } }));
    for (const p of stuck) {
      await this.markUnknown(p.id, { reason: 'the service restarted while the terminal was working on this payment' }, 'system:recovery');
    }
    return stuck.length;
  }

  /** A person settles an unknown or suspense attempt (for example from the reconciliation file). */
  async resolve(paymentId: string, outcome: 'approved' | 'declined', note: string, actor: string): Promise<PaymentView> {
    const p = await this.db.read((m) => m.findOne(Payment, { where: { id: paymentId } }));
    if (!p) throw notFound('payment', paymentId);
    if (p.status !== 'unknown' && p.status !== 'suspense') {
      throw conflict('payment_not_resolvable', `only an unknown or suspense payment can be resolved by hand; this one is ${p.status}`, { status: p.status });
    }
    if (outcome === 'approved') await this.settleApproved(paymentId, {}, actor, note);
    else await this.settleFailed(paymentId, 'declined', { reason: 'resolved by hand' }, actor, note);
    return this.view(paymentId);
  }

  /** Applies an approved tender to its order: paid once covered (stock sold once), or overpaid with a refund queued. */
  private async applyApproval(m: EntityManager, order: Order, p: Payment, actor: string, now: number): Promise<void> {
    if (order.status === 'reserved') {
      const paid = order.paidFen + p.amountFen;
      const due = order.totalFen - order.roundingFen;
      const excess = Math.max(0, paid - due);
      await exec(m, 'UPDATE orders SET paid_fen = ?, overpaid_fen = overpaid_fen + ?, updated_at = ? WHERE id = ?', [paid, excess, now, order.id]);
      if (excess > 0) await this.queueRefund(m, p, excess, now);
      if (paid >= due) {
        await moveOrder(m, order.id, 'reserved', 'paid', now);
        for (const hook of this.paidHooks) await hook(m, order, now);
        await audit(m, { actor, entity: 'order', entityId: order.id, action: 'paid', before: { status: 'reserved' }, after: { status: 'paid', paidFen: paid }, at: now });
        // Last: the stock rows are the contended ones.
        await this.inventory.commitSale(m, order.id, actor);
      }
      return;
    }
    // The order was settled meanwhile (paid by another tender, or ended): this money is not owed.
    await exec(m, 'UPDATE orders SET overpaid_fen = overpaid_fen + ?, updated_at = ? WHERE id = ?', [p.amountFen, now, order.id]);
    await this.queueRefund(m, p, p.amountFen, now);
    await audit(m, { actor, entity: 'order', entityId: order.id, action: 'overpaid', after: { paymentId: p.id, amountFen: p.amountFen, orderStatus: order.status }, at: now });
  }

  private async queueRefund(m: EntityManager, p: Payment, amountFen: number, now: number): Promise<void> {
    if (p.method !== 'card') return; // cash change is given at the till
    await exec(m, "UPDATE payment SET refund_state = 'queued', refund_fen = ?, updated_at = ? WHERE id = ?", [amountFen, now, p.id]);
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
    const where: FindOptionsWhere<Payment> = {};
    if (status) where.status = status;
    if (refund) where.refundState = refund;
    const found = await this.db.read((m) => m.find(Payment, { where, order: { createdAt: 'ASC' }, take: limit }));
    return found.map((p) => this.toView(p));
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

  private notify(id: string): void {
    this.changes.emit(id);
  }

  private waitForChange(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); this.changes.off(id, done); resolve(); };
      const t = setTimeout(done, ms);
      this.changes.on(id, done);
    });
  }

  toView(p: Payment): PaymentView {
    const now = this.clock.now().getTime();
    const iso = (t: number | null) => (t == null ? null : new Date(t).toISOString());
    const card = p.method === 'card';
    return {
      id: p.id, orderId: p.orderId, method: p.method, amountFen: p.amountFen, status: p.status, lane: p.lane, rf: p.rf, txnTime: p.txnTime,
      rc: p.rc, rm: p.rm, reason: p.reason, prompts: p.prompts ? JSON.parse(p.prompts) : [],
      card: card ? { masked: p.cardMasked, type: p.cardType } : null,
      terminal: card ? { terminalId: p.terminalId, merchantId: p.merchantId, batchNo: p.batchNo, traceNo: p.traceNo, rrn: p.rrn, authCode: p.authCode, time: p.terminalTime } : null,
      settleDate: p.settleDate, queryId: p.queryId,
      refund: p.refundState ? { state: p.refundState, amountFen: p.refundFen } : null,
      heldSeconds: p.status === 'unknown' || p.status === 'suspense' ? Math.round((now - (p.unknownSince ?? p.createdAt)) / 1000) : null,
      nextCheckAt: iso(p.nextCheckAt), checks: p.checks,
      resolution: p.resolvedBy ? { by: p.resolvedBy, note: p.resolutionNote } : null,
      createdAt: new Date(p.createdAt).toISOString(), updatedAt: new Date(p.updatedAt).toISOString(),
    };
  }
}

export { DomainError };
