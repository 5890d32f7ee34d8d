import { AnswerSlot, answerCommitted, refreshAnswer, storeAnswers } from '../http/idempotency';
import { EntityManager, In } from 'typeorm';
import { Db, exec, rows } from '../db/db';
import { audit } from '../audit/audit.service';
import { Clock, chinaTimestamp } from '../shared/clock';
import { conflict, notFound, unprocessable } from '../shared/errors';
import { newId, newPaymentReference } from '../shared/ids';
import { InventoryService } from '../inventory/inventory.service';
import { Order } from '../orders/order.entity';
import { OrderLine } from '../orders/order-line.entity';
import { OrderRefunder, OrdersService } from '../orders/orders.service';
import { Payment } from '../payments/payment.entity';
import { splitByLargestRemainder, unitsRefund } from '../coupons/split';
import { OrderReturn, ReturnLine } from './return.entity';
import { LegStatus, LegVia, RefundLeg } from './refund-leg.entity';
import { OPEN_LEG_STATUSES, moveLeg } from './leg-state';
import { RefundLegDriver } from './refund-legs';

export interface NewReturn {
  lines: { lineNo: number; qty: number }[];
  restock?: boolean;
  reason?: string;
}

export type ReturnStatus = 'refunding' | 'refunded' | 'needs_attention';

export interface LegView {
  id: string;
  paymentId: string;
  method: 'cash' | 'card';
  via: LegVia | null;
  amountFen: number;
  status: LegStatus;
  lane: string | null;
  rf: string | null;
  rc: string | null;
  rm: string | null;
  reason: string | null;
  resolution: { by: string | null; note: string | null } | null;
}

export interface ReturnView {
  id: string;
  orderId: string;
  kind: OrderReturn['kind'];
  status: ReturnStatus;
  refundFen: number;
  restock: boolean;
  reason: string | null;
  lines: { lineNo: number; qty: number; refundFen: number }[];
  legs: LegView[];
  createdAt: string;
}

/**
 * Returns of paid orders and the refunds of cancelled part-paid ones. The return (units, refund,
 * stock, legs with their RFs) is one transaction; the terminal is driven only after it commits.
 */
export class ReturnsService implements OrderRefunder {
  constructor(
    private readonly db: Db,
    private readonly inventory: InventoryService,
    private readonly orders: OrdersService,
    private readonly clock: Clock,
    readonly legs: RefundLegDriver,
  ) {}

  /**
   * `answer` (a keyed request): the return as committed is stored with it in its transaction, so a retry after
   * a crash replays it and never makes a second return; once the legs have been driven the stored answer is
   * refreshed to the return as it then stands.
   */
  async create(orderId: string, input: NewReturn, actor: string, answer?: AnswerSlot): Promise<ReturnView> {
    const seen = new Set<number>();
    for (const l of input.lines) {
      if (seen.has(l.lineNo))
        throw unprocessable(
          'duplicate_line',
          `line ${l.lineNo} appears more than once; put the quantity on one entry`,
          { lineNo: l.lineNo },
        );
      seen.add(l.lineNo);
    }
    const id = await this.db.tx(async (m) => {
      const made = await this.createIn(m, orderId, input, actor);
      if (answer) {
        const [view] = await this.views(m, [await m.findOneOrFail(OrderReturn, { where: { id: made } })]);
        await storeAnswers(m, [{ slot: answer, body: view }]);
      }
      return made;
    });
    answerCommitted(answer);
    await this.drive(id);
    const view = await this.get(id);
    await refreshAnswer(this.db, answer, view);
    return view;
  }

  async createIn(m: EntityManager, orderId: string, input: NewReturn, actor: string): Promise<string> {
    const now = this.clock.now().getTime();
    const order = await this.orders.lockOrder(m, orderId);
    if (order.status !== 'paid')
      throw conflict('order_not_returnable', `order ${orderId} is ${order.status}; only a paid order takes returns`, {
        status: order.status,
      });
    // A seat order has issued tickets; taking seats back would resell a seat whose ticket still admits someone.
    if (order.kind !== 'goods')
      throw conflict('order_not_returnable', `order ${orderId} sold ${order.kind}; tickets are not returned here`, {
        kind: order.kind,
      });
    const lines = await m.find(OrderLine, { where: { orderId }, order: { lineNo: 'ASC' } });
    const byNo = new Map(lines.map((l) => [l.lineNo, l]));
    const missing = input.lines.filter((l) => !byNo.has(l.lineNo)).map((l) => l.lineNo);
    if (missing.length)
      throw unprocessable('unknown_line', `order ${orderId} has no line ${missing.join(', ')}`, { lineNos: missing });
    const refundable = refundablePerLine(order, lines);
    const returnId = newId();
    const taken: ReturnLine[] = [];
    for (const req of [...input.lines].sort((a, b) => a.lineNo - b.lineNo)) {
      const line = byNo.get(req.lineNo)!;
      // The guard: units are claimed by a conditional UPDATE, so concurrent returns of the same units cannot both win.
      const n = await exec(
        m,
        'UPDATE order_line SET returned_qty = returned_qty + ? WHERE id = ? AND returned_qty + ? <= qty',
        [req.qty, line.id, req.qty],
      );
      const [{ returned_qty }] = await rows<{ returned_qty: unknown }>(
        m,
        'SELECT returned_qty FROM order_line WHERE id = ?',
        [line.id],
      );
      const returned = Number(returned_qty);
      if (n !== 1) {
        throw conflict(
          'return_exceeds_sold',
          `line ${req.lineNo}: ${line.qty} sold, ${returned} already returned, ${req.qty} asked`,
          { lineNo: req.lineNo, soldQty: line.qty, returnedQty: returned, requestedQty: req.qty },
        );
      }
      const firstUnit = returned - req.qty;
      taken.push(
        Object.assign(new ReturnLine(), {
          returnId,
          lineNo: req.lineNo,
          orderLineId: line.id,
          qty: req.qty,
          firstUnit,
          refundFen: unitsRefund(refundable.get(line.lineNo)!, line.qty, firstUnit, req.qty),
        }),
      );
    }
    const refundFen = taken.reduce((s, l) => s + l.refundFen, 0);
    const restock = input.restock ?? true;
    await m.insert(OrderReturn, {
      id: returnId,
      orderId,
      kind: 'return',
      refundFen,
      restock,
      reason: input.reason ?? null,
      createdBy: actor,
      createdAt: now,
    });
    await m.insert(
      ReturnLine,
      taken.map((l) => ({ ...l })),
    );
    await exec(m, 'UPDATE orders SET refunded_fen = refunded_fen + ?, updated_at = ? WHERE id = ?', [
      refundFen,
      now,
      orderId,
    ]);
    const legs = await this.allocateLegs(m, order, returnId, refundFen, now);
    await audit(m, {
      actor,
      entity: 'return',
      entityId: returnId,
      action: 'create',
      at: now,
      after: {
        orderId,
        refundFen,
        restock,
        reason: input.reason,
        lines: taken.map((l) => ({ lineNo: l.lineNo, qty: l.qty, refundFen: l.refundFen })),
        legs: legs.map(legAudit),
      },
    });
    await this.inventory.takeBack(
      m,
      taken.map((l) => ({ sku: byNo.get(l.lineNo)!.sku, qty: l.qty, orderId, orderLineId: l.orderLineId, restock })),
      returnId,
      actor,
    );
    return returnId;
  }

  /** In the cancel's transaction: every approved tender gets a leg for what is left of it. */
  async refundCancelledIn(m: EntityManager, order: Order, actor: string, now: number): Promise<string | null> {
    const left = await this.leftPerTender(m, order.id);
    const refundFen = left.reduce((s, t) => s + t.leftFen, 0);
    if (refundFen === 0) return null;
    const returnId = newId();
    await m.insert(OrderReturn, {
      id: returnId,
      orderId: order.id,
      kind: 'cancel',
      refundFen,
      restock: true,
      reason: 'order cancelled with approved tenders',
      createdBy: actor,
      createdAt: now,
    });
    await exec(m, 'UPDATE orders SET refunded_fen = refunded_fen + ?, updated_at = ? WHERE id = ?', [
      refundFen,
      now,
      order.id,
    ]);
    const legs = await this.allocateLegs(m, order, returnId, refundFen, now);
    await audit(m, {
      actor,
      entity: 'return',
      entityId: returnId,
      action: 'cancel_refund',
      after: { orderId: order.id, refundFen, legs: legs.map(legAudit) },
      at: now,
    });
    return returnId;
  }

  /** Approved tenders, newest first, with what is left of each after overpaid refunds and earlier legs. */
  private async leftPerTender(m: EntityManager, orderId: string): Promise<{ p: Payment; leftFen: number }[]> {
    const tenders = await m.find(Payment, { where: { orderId, status: 'approved' } });
    tenders.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    const legs = tenders.length ? await m.find(RefundLeg, { where: { paymentId: In(tenders.map((t) => t.id)) } }) : [];
    return tenders.map((p) => {
      // Every leg, failed ones included, is a claim on its tender: a failed leg is owed and is paid in cash, not re-sent.
      const claimed = legs.filter((l) => l.paymentId === p.id).reduce((s, l) => s + l.amountFen, 0);
      const overpaid = p.refundState ? (p.refundFen ?? p.amountFen) : 0;
      return { p, leftFen: Math.max(0, p.amountFen - overpaid - claimed) };
    });
  }

  /**
   * Splits a refund over the order's approved tenders, newest first, each up to what is left of it,
   * and stores one leg per tender: cash approved at once; card queued with its own RF and its way
   * (V0 in the open batch for the whole amount, else R0 with RR and OD) decided before the first byte.
   */
  private async allocateLegs(
    m: EntityManager,
    order: Order,
    returnId: string,
    refundFen: number,
    now: number,
  ): Promise<RefundLeg[]> {
    const tenders = await this.leftPerTender(m, order.id);
    const today = chinaTimestamp(new Date(now)).slice(0, 8);
    let remaining = refundFen;
    const legs: RefundLeg[] = [];
    for (const { p, leftFen } of tenders) {
      if (remaining === 0) break;
      const amountFen = Math.min(leftFen, remaining);
      if (amountFen === 0) continue;
      remaining -= amountFen;
      const leg = Object.assign(new RefundLeg(), {
        id: newId(),
        returnId,
        orderId: order.id,
        paymentId: p.id,
        seq: legs.length + 1,
        method: p.method,
        amountFen,
        lane: p.lane,
        acked: false,
        checks: 0,
        createdAt: now,
        updatedAt: now,
        rf: null,
        txnTime: null,
        rc: null,
        rm: null,
        reason: null,
        traceNo: null,
        rrn: null,
        nextCheckAt: null,
        claimUntil: null,
        resolvedBy: null,
        note: null,
        finishedAt: null,
      } as RefundLeg);
      if (p.method === 'cash') {
        Object.assign(leg, { status: 'approved', via: 'cash', finishedAt: now });
      } else {
        const wholeInOpenBatch =
          p.terminalTime?.slice(0, 8) === today && amountFen === p.amountFen && leftFen === p.amountFen && !!p.traceNo;
        const via: LegVia = wholeInOpenBatch ? 'V0' : p.rrn && p.terminalTime ? 'R0' : 'none';
        if (via === 'none') {
          Object.assign(leg, {
            status: 'failed',
            via,
            finishedAt: now,
            reason: 'the card sale has no terminal reference (RR) to refund against; pay this leg in cash',
          });
        } else {
          Object.assign(leg, {
            status: 'queued',
            via,
            rf: `R${newPaymentReference(new Date(now)).slice(1)}`,
            txnTime: chinaTimestamp(new Date(now)),
          });
        }
      }
      legs.push(leg);
    }
    // Cash given back at once: stamped after its lanes' shift locks (shifts/shift-lock.ts).
    const cashLegs = legs.filter((l) => l.status === 'approved');
    if (cashLegs.length) {
      const at = await this.legs.stamp(
        m,
        cashLegs.map((l) => l.lane),
      );
      for (const l of cashLegs) l.finishedAt = at;
    }
    if (remaining !== 0)
      throw conflict(
        'refund_exceeds_tenders',
        `the order's tenders have ${refundFen - remaining} fen left to refund, ${refundFen} asked`,
        { refundFen, leftFen: refundFen - remaining },
      );
    if (legs.length)
      await m.insert(
        RefundLeg,
        legs.map((l) => ({ ...l })),
      ); // copies: see OrdersService.createIn
    return legs;
  }

  /** Drives the return's queued card legs on their terminals, one after another (outside any transaction). */
  async drive(returnId: string): Promise<void> {
    await this.legs.driveReturn(returnId);
  }

  /** A failed leg paid out in cash at the till instead; audited with the cashier's note. */
  async payLegInCash(returnId: string, legId: string, note: string, actor: string): Promise<ReturnView> {
    await this.db.tx(async (m) => {
      const leg = await m.findOne(RefundLeg, { where: { id: legId, returnId } });
      if (!leg) throw notFound('refund_leg', legId);
      const now = await this.legs.stamp(m, [leg.lane]);
      if (leg.status !== 'failed')
        throw conflict('leg_not_failed', `only a failed leg is paid in cash; this one is ${leg.status}`, {
          status: leg.status,
        });
      await moveLeg(m, legId, 'failed', 'paid_in_cash', now, { resolved_by: actor, note, finished_at: now });
      await audit(m, {
        actor,
        entity: 'refund_leg',
        entityId: legId,
        action: 'paid_in_cash',
        before: { status: 'failed', amountFen: leg.amountFen },
        after: { status: 'paid_in_cash', amountFen: leg.amountFen, note },
        at: now,
      });
    });
    return this.get(returnId);
  }

  /**
   * A person settles an unknown leg (from the acquirer's reconciliation file or the terminal's
   * printout): the way out when neither the terminal nor the acquirer can tell. Audited with the note.
   */
  async resolveLeg(
    returnId: string,
    legId: string,
    outcome: 'approved' | 'failed',
    note: string,
    actor: string,
  ): Promise<ReturnView> {
    await this.db.tx(async (m) => {
      const leg = await m.findOne(RefundLeg, { where: { id: legId, returnId } });
      if (!leg) throw notFound('refund_leg', legId);
      const now = await this.legs.stamp(m, [leg.lane]);
      // A queued leg was never sent (its lane's terminal away for good): a person may only fail it, to pay it in cash.
      const queuedToFailed = leg.status === 'queued' && outcome === 'failed';
      if (leg.status !== 'unknown' && !queuedToFailed)
        throw conflict(
          'leg_not_unknown',
          `only an unknown leg is resolved by hand, or a queued one failed; this one is ${leg.status}`,
          { status: leg.status },
        );
      await moveLeg(m, legId, leg.status, outcome, now, {
        resolved_by: actor,
        note,
        finished_at: now,
        next_check_at: null,
        claim_until: null,
      });
      await audit(m, {
        actor,
        entity: 'refund_leg',
        entityId: legId,
        action: 'resolve',
        before: { status: leg.status },
        after: { status: outcome, amountFen: leg.amountFen, rf: leg.rf, note },
        at: now,
      });
    });
    return this.get(returnId);
  }

  /** The lane of the return's order, or null when there is no such return. */
  async laneOf(returnId: string): Promise<string | null> {
    const r = await this.db.read((m) =>
      rows<{ lane: string }>(m, 'SELECT o.lane FROM order_return r JOIN orders o ON o.id = r.order_id WHERE r.id = ?', [
        returnId,
      ]),
    );
    return r[0]?.lane ?? null;
  }

  async get(id: string): Promise<ReturnView> {
    const v = await this.db.read(async (m) => {
      const r = await m.findOne(OrderReturn, { where: { id } });
      return r ? (await this.views(m, [r]))[0] : null;
    });
    if (!v) throw notFound('return', id);
    return v;
  }

  async returnsOf(m: EntityManager, orderId: string): Promise<ReturnView[]> {
    const rs = await m.find(OrderReturn, { where: { orderId }, order: { createdAt: 'ASC' } });
    return this.views(m, rs);
  }

  /** Legs that need a person: failed ones not yet paid in cash (oldest first). */
  async failedLegs(): Promise<(LegView & { returnId: string; orderId: string })[]> {
    const legs = await this.db.read((m) =>
      m.find(RefundLeg, { where: { status: 'failed' }, order: { createdAt: 'ASC' }, take: 500 }),
    );
    return legs.map((l) => ({ ...legView(l), returnId: l.returnId, orderId: l.orderId }));
  }

  private async views(m: EntityManager, rs: OrderReturn[]): Promise<ReturnView[]> {
    if (!rs.length) return [];
    const ids = rs.map((r) => r.id);
    const lines = await m.find(ReturnLine, { where: { returnId: In(ids) } });
    const legs = await m.find(RefundLeg, { where: { returnId: In(ids) } });
    return rs.map((r) => {
      const ls = legs.filter((l) => l.returnId === r.id).sort((a, b) => a.seq - b.seq);
      const status: ReturnStatus = ls.some((l) => OPEN_LEG_STATUSES.includes(l.status))
        ? 'refunding'
        : ls.some((l) => l.status === 'failed')
          ? 'needs_attention'
          : 'refunded';
      return {
        id: r.id,
        orderId: r.orderId,
        kind: r.kind,
        status,
        refundFen: r.refundFen,
        restock: r.restock,
        reason: r.reason,
        lines: lines
          .filter((l) => l.returnId === r.id)
          .sort((a, b) => a.lineNo - b.lineNo)
          .map((l) => ({ lineNo: l.lineNo, qty: l.qty, refundFen: l.refundFen })),
        legs: ls.map(legView),
        createdAt: new Date(r.createdAt).toISOString(),
      };
    });
  }
}

/**
 * What each line can give back in all: its net, or — when cash rounding dropped fen from the
 * order — the amount actually collected split over the lines' nets, so refunds never exceed it.
 */
export function refundablePerLine(
  order: Pick<Order, 'totalFen' | 'roundingFen'>,
  lines: Pick<OrderLine, 'lineNo' | 'qty' | 'unitPriceFen' | 'discountFen'>[],
): Map<number, number> {
  const sorted = [...lines].sort((a, b) => a.lineNo - b.lineNo);
  const nets = sorted.map((l) => l.qty * l.unitPriceFen - l.discountFen);
  const parts = order.roundingFen === 0 ? nets : splitByLargestRemainder(order.totalFen - order.roundingFen, nets);
  return new Map(sorted.map((l, i) => [l.lineNo, parts[i]]));
}

function legView(l: RefundLeg): LegView {
  return {
    id: l.id,
    paymentId: l.paymentId,
    method: l.method,
    via: l.via,
    amountFen: l.amountFen,
    status: l.status,
    lane: l.lane,
    rf: l.rf,
    rc: l.rc,
    rm: l.rm,
    reason: l.reason,
    resolution: l.resolvedBy ? { by: l.resolvedBy, note: l.note } : null,
  };
}

const legAudit = (l: RefundLeg) => ({
  id: l.id,
  paymentId: l.paymentId,
  method: l.method,
  via: l.via,
  amountFen: l.amountFen,
  status: l.status,
  rf: l.rf,
});
