import { Db, exec, rows } from '../db/db';
import type { MoneyTime } from '../shifts/shift-lock';
import { Acquirer } from '../acquirer/acquirer';
import { ACQUIRER_QUIET_MS } from './policy';
import { audit } from '../audit/audit.service';
import { Payment } from '../payments/payment.entity';
import { TerminalCardDriver } from '../payments/card-flow';
import { drivenLanes } from '../payments/lane-lease';
import { Terminal, notExecutedBusy } from '../terminal/terminal';
import { Clock, chinaTimestamp } from '../shared/clock';
import { Logger } from '../shared/logger';

/** `queued`: not executed because the terminal was busy (a sale or a return leg took it meanwhile); sent again. */
type RefundOutcome = 'done' | 'failed' | 'unknown' | 'manual' | 'queued';

/** How long an unknown refund waits between two checks of its own RF. */
const RECHECK_MS = 30_000;

/**
 * Gives back card money an order did not need (overpaid): a void in the open batch, else a refund,
 * on the terminal of the lane it was taken on, by the instance that drives that lane. The refund's
 * own RF is stored with `in_progress` before its first byte, so a crash leaves something to ask
 * about: an `in_progress` refund nobody is working on becomes `unknown`, and an unknown refund is
 * asked about by that RF (Q0 on the terminal, then the acquirer) — never sent again under a new one.
 */
export class Refunds {
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly terminals: Map<string, Terminal>,
    private readonly cards: TerminalCardDriver | null,
    private readonly acquirer: Acquirer | null,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** The time to stamp on money given back on a lane (PaymentsService.moneyTime: after its shift lock). */
    private readonly moneyTime: MoneyTime = async () => clock.now().getTime(),
  ) {}

  private idleTerminal(lane: string | null): Terminal | null {
    if (!lane || !this.cards?.holdsLane(lane)) return null;
    const t = this.terminals.get(lane);
    return t && t.isConnected() && t.isIdle() ? t : null;
  }

  /** Sends the queued refunds of the lanes this instance drives. Returns how many are done. */
  async process(): Promise<number> {
    const lanes = this.cards?.lanes() ?? [];
    if (!lanes.length) return 0;
    const queued = await this.db.read((m) =>
      m
        .createQueryBuilder(Payment, 'p')
        .where("p.refund_state = 'queued' AND p.lane IN (:...lanes)", { lanes })
        .limit(20)
        .getMany(),
    );
    let done = 0;
    for (const p of queued) {
      const t = this.idleTerminal(p.lane);
      if (!t) continue;
      const now = this.clock.now();
      const rf = p.refundRf ?? `${p.rf!.slice(0, 29)}-RF`;
      const txnTime = chinaTimestamp(now);
      // The refund's RF is in the database before its first byte; the claim is conditional, so one instance sends it.
      const claimed = await this.db.tx((m) =>
        exec(
          m,
          "UPDATE payment SET refund_state = 'in_progress', refund_rf = ?, refund_txn_time = ?, updated_at = ? WHERE id = ? AND refund_state = 'queued'",
          [rf, txnTime, now.getTime(), p.id],
        ),
      );
      if (claimed !== 1) continue;
      this.inFlight.add(p.id);
      try {
        if ((await this.send(t, p, rf, now)) === 'done') done++;
      } finally {
        this.inFlight.delete(p.id);
      }
    }
    return done;
  }

  private async send(t: Terminal, p: Payment, rf: string, now: Date): Promise<RefundOutcome> {
    const amount = p.refundFen ?? p.amountFen;
    // The terminal's batch day is China's calendar day, like its DT field.
    const today = chinaTimestamp(now).slice(0, 8);
    const canVoid = p.terminalTime?.slice(0, 8) === today && amount === p.amountFen && !!p.traceNo;
    let state: RefundOutcome;
    let via: 'V0' | 'R0' | 'none' = 'none';
    let outcomeKind = 'not sent';
    if (!canVoid && !p.rrn) {
      // Approved by the acquirer with no terminal reference to refund against: a person refunds it.
      state = 'manual';
    } else {
      via = canVoid ? 'V0' : 'R0';
      try {
        const outcome = canVoid
          ? await t.voidSale({ rf, amountFen: amount, traceNo: p.traceNo! })
          : await t.refund({ rf, amountFen: amount, rrn: p.rrn!, originalDate: (p.terminalTime ?? today).slice(0, 8) });
        outcomeKind = outcome.kind;
        state =
          outcome.kind === 'approved'
            ? 'done'
            : outcome.kind === 'unknown'
              ? 'unknown'
              : notExecutedBusy(outcome)
                ? 'queued'
                : 'failed';
      } catch (err) {
        this.log.error('refund at the terminal failed in the driver; its outcome is unknown', {
          paymentId: p.id,
          rf,
          err: String(err),
        });
        state = 'unknown';
        outcomeKind = 'driver_failed';
      }
    }
    await this.record(p.id, p.lane, 'in_progress', state, { amountFen: amount, via, rf, outcome: outcomeKind });
    return state;
  }

  private async record(
    paymentId: string,
    lane: string | null,
    from: string,
    state: RefundOutcome,
    detail: Record<string, unknown>,
  ): Promise<boolean> {
    return this.db.tx(async (m) => {
      // A refund done is money back on the lane's shift report: stamped after its shift lock (shifts/shift-lock.ts).
      const now = state === 'done' ? await this.moneyTime(m, [lane]) : this.clock.now().getTime();
      const n = await exec(m, 'UPDATE payment SET refund_state = ?, updated_at = ? WHERE id = ? AND refund_state = ?', [
        state,
        now,
        paymentId,
        from,
      ]);
      if (n === 1)
        await audit(m, {
          actor: 'system:sweeper',
          entity: 'payment',
          entityId: paymentId,
          action: 'refund',
          before: { state: from },
          after: { state, ...detail },
          at: now,
        });
      return n === 1;
    });
  }

  /**
   * `in_progress` refunds nobody is working on become `unknown`: on a lane this instance drives, one
   * it is not sending; on a lane no live instance drives, any (its sender died with its lease).
   */
  async recoverInterrupted(): Promise<number> {
    const stuck = await this.db.read((m) =>
      rows<{ id: string; lane: string | null }>(m, "SELECT id, lane FROM payment WHERE refund_state = 'in_progress'"),
    );
    if (!stuck.length) return 0;
    const driven = await drivenLanes(this.db, this.clock.now().getTime());
    let n = 0;
    for (const { id, lane } of stuck) {
      if (this.inFlight.has(id)) continue;
      const mine = !!lane && !!this.cards?.holdsLane(lane);
      if (!mine && lane && driven.has(lane)) continue; // another live instance is sending it
      if (await this.record(id, null, 'in_progress', 'unknown', { why: 'interrupted' })) n++;
    }
    if (n) this.log.warn('refunds left in progress by a crash are now unknown; asking by their own RF', { count: n });
    return n;
  }

  /**
   * Asks about unknown refunds by their own RF: the terminal's journal when this instance drives the lane, else
   * the acquirer — not while it has asked for quiet (`quiet.on()`), and a 37 from it starts that quiet
   * (`quiet.asked`), as it does for the sweeper's own checks.
   */
  async checkUnknown(quiet?: { on(): boolean; asked(ms: number): Promise<void> }): Promise<number> {
    const now = this.clock.now().getTime();
    const unknown = await this.db.read((m) =>
      rows<{ id: string }>(
        m,
        "SELECT id FROM payment WHERE refund_state = 'unknown' AND updated_at <= ? ORDER BY updated_at LIMIT 20",
        [now - RECHECK_MS],
      ),
    );
    if (!unknown.length) return 0;
    const found = await this.db.read((m) =>
      m.findByIds(
        Payment,
        unknown.map((u) => u.id),
      ),
    );
    const driven = await drivenLanes(this.db, now);
    let settled = 0;
    for (const p of found) {
      // Refunds from before refund_rf was stored were sent under this same derived RF.
      p.refundRf ??= `${p.rf!.slice(0, 29)}-RF`;
      const t = this.idleTerminal(p.lane);
      if (!t && p.lane && driven.has(p.lane) && !this.cards?.holdsLane(p.lane)) continue; // the lane's driver asks its own terminal
      let verdict: 'done' | 'failed' | null = null;
      let source = 'none';
      if (t) {
        let q = await t.query(p.refundRf!);
        if (q.kind === 'status' && q.status === 'P') {
          await t.signIn();
          q = await t.query(p.refundRf!);
        }
        if (q.kind === 'status') {
          source = `terminal:${q.status}`;
          if (q.status === 'A') verdict = 'done';
          else if (q.status === 'D' || q.status === 'R') verdict = 'failed';
        }
      }
      if (!verdict && this.acquirer && p.refundTxnTime && !quiet?.on()) {
        const a = await this.acquirer.query({ orderId: p.refundRf!, txnTime: p.refundTxnTime });
        source = `acquirer:${a.kind}`;
        if (a.kind === 'rate_limited') await quiet?.asked(ACQUIRER_QUIET_MS);
        if (a.kind === 'approved') verdict = 'done';
        else if (a.kind === 'failed') verdict = 'failed';
      }
      if (verdict) {
        if (await this.record(p.id, p.lane, 'unknown', verdict, { rf: p.refundRf, source })) settled++;
      } else {
        // Nobody could tell: ask again later, by the same RF.
        await this.db.tx((m) =>
          exec(m, "UPDATE payment SET updated_at = ? WHERE id = ? AND refund_state = 'unknown'", [
            this.clock.now().getTime(),
            p.id,
          ]),
        );
      }
    }
    return settled;
  }

  /** For sweeps that run while this instance is mid-refund. */
  isInFlight(paymentId: string): boolean {
    return this.inFlight.has(paymentId);
  }
}
