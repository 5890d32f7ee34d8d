import { EntityManager, In } from 'typeorm';
import { Db, exec } from '../db/db';
import { Acquirer } from '../acquirer/acquirer';
import { Terminal, SaleOutcome, notExecutedBusy } from '../terminal/terminal';
import { Clock } from '../shared/clock';
import { Logger } from '../shared/logger';
import { audit } from '../audit/audit.service';
import { Payment } from '../payments/payment.entity';
import { nextCheckDelayMs } from '../sweeper/schedule';
import { RefundLeg, LegStatus } from './refund-leg.entity';
import { moveLeg } from './leg-state';
import { drivenLanes } from '../payments/lane-lease';
import type { MoneyTime } from '../shifts/shift-lock';

type Verdict =
  | { to: 'approved'; traceNo?: string | null; rrn?: string | null; source: string }
  | { to: 'failed'; reason: string; rc?: string | null }
  | { to: 'unknown'; reason: string };

/** Which lanes this instance may use now (the lane lease): only the holder puts bytes on a terminal. */
export interface LaneAccess {
  drivesLane(lane: string): Promise<boolean>;
  holdsLane(lane: string): boolean;
}

/** A pending leg nobody drives any more (the service restarted mid-refund) is unknown after this long. */
const ORPHAN_AFTER_MS = 10_000;

/**
 * Puts card refund legs on their lane's terminal and settles the unknown ones. A leg is in the
 * database with its RF before the first byte; an unknown outcome is asked about under that same RF
 * (Q0, then the acquirer), never sent again under a new one — that would refund the customer twice.
 */
export class RefundLegDriver {
  private readonly inFlight = new Set<string>();
  private moneyTime: MoneyTime = async () => this.clock.now().getTime();

  constructor(
    private readonly db: Db,
    private readonly terminals: Map<string, Terminal>,
    private readonly acquirer: Acquirer | null,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Without it (a single instance by construction) every configured lane is driven here. */
    private readonly lanes: LaneAccess | null = null,
  ) {}

  /** With POS_SHIFTS=on, a leg's money is stamped after its lane's open shift is share-locked (shifts/shift-lock.ts). */
  useMoneyTime(fn: MoneyTime): void {
    this.moneyTime = fn;
  }

  /** The time for a leg's money in `m`'s transaction (see useMoneyTime); the return's own legs use it too. */
  stamp(m: EntityManager, lanes: (string | null)[]): Promise<number> {
    return this.moneyTime(m, lanes);
  }

  /**
   * Sends a return's queued legs now, in order. Never throws: the return is committed already, and an
   * error answer to it would invite a second return; a leg that could not be sent is left to the sweep
   * (still queued, or pending, which the sweep moves to unknown and settles by its RF).
   */
  async driveReturn(returnId: string): Promise<void> {
    try {
      const queued = await this.db.read((m) =>
        m.find(RefundLeg, { where: { returnId, status: 'queued' }, order: { seq: 'ASC' } }),
      );
      for (const leg of queued) await this.drive(leg);
    } catch (err) {
      this.log.error('refund legs not sent now; the sweep sends them', { returnId, err: String(err) });
    }
  }

  /** Sends a queued leg; it stays queued (for the sweep) while its terminal is away or busy. */
  async drive(leg: RefundLeg): Promise<void> {
    const t = leg.lane ? this.terminals.get(leg.lane) : undefined;
    if (!t || !t.isConnected() || !t.isIdle() || this.inFlight.has(leg.id)) return;
    if (this.lanes && !(await this.lanes.drivesLane(leg.lane!))) return; // another instance drives this lane; its sweep sends it
    const original = await this.db.read((m) => m.findOne(Payment, { where: { id: leg.paymentId } }));
    if (!original) throw new Error(`refund leg ${leg.id} points at a missing payment ${leg.paymentId}`);
    const claimed = await this.db.tx((m) =>
      exec(m, "UPDATE refund_leg SET status = 'pending', updated_at = ? WHERE id = ? AND status = 'queued'", [
        this.clock.now().getTime(),
        leg.id,
      ]),
    );
    if (claimed !== 1) return;
    // In flight until its outcome is recorded: the sweep moves a pending leg that is not in flight to unknown,
    // and doing so between the terminal's answer and its record would lose the answer (leg_changed).
    this.inFlight.add(leg.id);
    try {
      await this.exchange(leg, t, original);
    } finally {
      this.inFlight.delete(leg.id);
    }
  }

  /** The claimed leg at its terminal, and its outcome recorded. */
  private async exchange(leg: RefundLeg, t: Terminal, original: Payment): Promise<void> {
    let outcome: SaleOutcome;
    try {
      const hooks = {
        onAcked: () =>
          this.db.tx((m) => exec(m, 'UPDATE refund_leg SET acked = 1 WHERE id = ?', [leg.id])).then(() => undefined),
      };
      outcome =
        leg.via === 'V0'
          ? await t.voidSale({ rf: leg.rf!, amountFen: leg.amountFen, traceNo: original.traceNo! }, hooks)
          : await t.refund(
              {
                rf: leg.rf!,
                amountFen: leg.amountFen,
                rrn: original.rrn!,
                originalDate: original.terminalTime!.slice(0, 8),
              },
              hooks,
            );
    } catch (err) {
      outcome = { kind: 'unknown', reason: `terminal driver failed: ${String(err)}`, acked: true };
    }
    this.log.info('refund leg outcome', { legId: leg.id, rf: leg.rf, via: leg.via, outcome: outcome.kind });
    await this.db.tx(async (m) => {
      const now = await this.moneyTime(m, [leg.lane]);
      let to: LegStatus;
      const set: Record<string, string | number | null> = {};
      switch (outcome.kind) {
        case 'approved':
          to = 'approved';
          Object.assign(set, {
            rc: '00',
            trace_no: outcome.sale.traceNo ?? null,
            rrn: outcome.sale.rrn ?? null,
            finished_at: now,
          });
          break;
        case 'declined':
          to = 'failed';
          Object.assign(set, {
            rc: outcome.rc,
            rm: outcome.rm?.slice(0, 128) ?? null,
            reason: 'declined by the terminal; pay this leg in cash',
            finished_at: now,
          });
          break;
        case 'not_executed':
          // Busy: nothing happened at the terminal, so the same RF may go out again later. Anything else is a confirmed failure.
          if (notExecutedBusy(outcome)) {
            to = 'queued';
            set.reason = `not executed: ${outcome.reason}`.slice(0, 255);
          } else {
            to = 'failed';
            Object.assign(set, {
              rc: outcome.rc ?? null,
              reason: `not executed: ${outcome.reason}; pay this leg in cash`.slice(0, 255),
              finished_at: now,
            });
          }
          break;
        case 'unknown':
          to = 'unknown';
          Object.assign(set, {
            rc: outcome.rc ?? null,
            reason: outcome.reason.slice(0, 255),
            next_check_at: now + 1000,
            checks: 0,
            acked: outcome.acked ? 1 : 0,
          });
          break;
      }
      await moveLeg(m, leg.id, 'pending', to, now, set);
      await audit(m, {
        actor: 'system:terminal',
        entity: 'refund_leg',
        entityId: leg.id,
        action: leg.via!,
        before: { status: 'pending' },
        after: { status: to, outcome: outcome.kind, rf: leg.rf },
        at: now,
      });
    });
  }

  /**
   * The sweep's step: sends queued legs, marks orphaned pending ones unknown, and settles unknown
   * ones by their own RF. Returns how many legs reached a final outcome.
   */
  async sweep(): Promise<number> {
    const now = this.clock.now().getTime();
    let settled = 0;
    // Only the legs of lanes this instance drives now: fifty legs waiting on another instance's lane (or
    // on a lane that is gone) would otherwise fill every page and starve the lanes it could send.
    const mine = [...this.terminals.keys()].filter((l) => !this.lanes || this.lanes.holdsLane(l));
    const queued = mine.length
      ? await this.db.read((m) =>
          m.find(RefundLeg, { where: { status: 'queued', lane: In(mine) }, order: { createdAt: 'ASC' }, take: 50 }),
        )
      : [];
    for (const leg of queued) {
      await this.drive(leg).catch((err) =>
        this.log.error('refund leg could not be driven', { legId: leg.id, err: String(err) }),
      );
    }
    // Pending legs nobody is working on: on a lane this instance drives, one it is not sending; on a lane no
    // live instance drives, any (its sender died with its lease, and no one else will ever record its outcome).
    const driven = this.lanes ? await drivenLanes(this.db, now) : new Set(mine);
    const pending = await this.db.read((m) =>
      m
        .createQueryBuilder(RefundLeg, 'l')
        .where(
          "l.status = 'pending' AND l.updated_at < :before AND (l.lane IN (:...mine) OR l.lane NOT IN (:...driven))",
          {
            before: now - ORPHAN_AFTER_MS,
            mine: mine.length ? mine : [''],
            driven: driven.size ? [...driven] : [''],
          },
        )
        .take(50)
        .getMany(),
    );
    for (const leg of pending) {
      // Only the lane's driver knows nobody is working on it; on a lane another live instance drives it may be
      // in flight there.
      if (this.inFlight.has(leg.id) || !leg.lane) continue;
      if (this.lanes && !this.lanes.holdsLane(leg.lane) && driven.has(leg.lane)) continue;
      await this.db
        .tx((m) =>
          moveLeg(m, leg.id, 'pending', 'unknown', now, {
            reason: 'no outcome was recorded for this refund (service restarted?)',
            next_check_at: now,
            checks: 0,
            // The terminal may have taken it before the ACK was recorded: its journal's N is not proof that
            // nothing was refunded (as for an interrupted sale), so the acquirer is asked before any cash goes out.
            acked: 1,
          }),
        )
        .catch(() => undefined);
    }
    const due = await this.db.read((m) =>
      m
        .createQueryBuilder(RefundLeg, 'l')
        .where("l.status = 'unknown' AND l.next_check_at <= :now AND (l.claim_until IS NULL OR l.claim_until < :now)", {
          now,
        })
        .orderBy('l.next_check_at')
        .take(50)
        .getMany(),
    );
    for (const leg of due) {
      // Claimed for a while so another instance's sweep does not ask about it at the same moment.
      const claimed = await this.db.tx((m) =>
        exec(
          m,
          "UPDATE refund_leg SET claim_until = ? WHERE id = ? AND status = 'unknown' AND (claim_until IS NULL OR claim_until < ?)",
          [now + 120_000, leg.id, now],
        ),
      );
      if (claimed !== 1) continue;
      let v: Verdict;
      try {
        v = await this.ask(leg);
      } catch (err) {
        v = { to: 'unknown', reason: `check failed: ${String(err)}` };
      }
      await this.record(leg, v).catch((err) =>
        this.log.warn('could not record a refund leg verdict', { legId: leg.id, err: String(err) }),
      );
      if (v.to !== 'unknown') settled++;
    }
    return settled;
  }

  private async ask(leg: RefundLeg): Promise<Verdict> {
    const t = leg.lane ? this.terminals.get(leg.lane) : undefined;
    if (t && t.isConnected() && t.isIdle() && (!this.lanes || this.lanes.holdsLane(leg.lane!))) {
      let q = await t.query(leg.rf!);
      if (q.kind === 'status' && q.status === 'P') {
        // The terminal holds a reversal of this refund it has not sent: sign-in flushes it, then the journal says R.
        await t.signIn();
        q = await t.query(leg.rf!);
      }
      if (q.kind === 'status') {
        switch (q.status) {
          case 'A':
            return { to: 'approved', traceNo: q.traceNo ?? null, rrn: q.rrn ?? null, source: 'terminal' };
          case 'D':
            return { to: 'failed', reason: 'terminal journal: the refund was declined; pay this leg in cash' };
          case 'R':
          case 'V':
            return { to: 'failed', reason: 'terminal journal: the refund was reversed; pay this leg in cash' };
          case 'N':
            if (!leg.acked)
              return { to: 'failed', reason: 'the terminal never accepted this refund; pay this leg in cash' };
            break; // ACKed but not in the journal: the terminal lost it; ask the acquirer
          case 'P':
            return { to: 'unknown', reason: 'terminal: refund reversal pending' };
        }
      }
    }
    if (!this.acquirer || !leg.txnTime)
      return { to: 'unknown', reason: 'terminal cannot tell and no acquirer is configured' };
    const a = await this.acquirer.query({ orderId: leg.rf!, txnTime: leg.txnTime });
    switch (a.kind) {
      case 'approved':
        return { to: 'approved', traceNo: a.traceNo ?? null, source: 'acquirer' };
      case 'failed':
        return {
          to: 'failed',
          rc: a.origRespCode,
          reason: `acquirer: the refund failed (${a.origRespCode}); pay this leg in cash`,
        };
      default:
        return { to: 'unknown', reason: `acquirer: ${a.kind}` };
    }
  }

  private async record(leg: RefundLeg, v: Verdict): Promise<void> {
    await this.db.tx(async (m) => {
      const now = v.to === 'unknown' ? this.clock.now().getTime() : await this.moneyTime(m, [leg.lane]);
      if (v.to === 'unknown') {
        const checks = leg.checks + 1;
        await exec(
          m,
          "UPDATE refund_leg SET checks = ?, next_check_at = ?, claim_until = NULL, reason = ?, updated_at = ? WHERE id = ? AND status = 'unknown'",
          [checks, now + nextCheckDelayMs(checks), v.reason.slice(0, 255), now, leg.id],
        );
        return;
      }
      const set: Record<string, string | number | null> = { finished_at: now, claim_until: null, next_check_at: null };
      if (v.to === 'approved')
        Object.assign(set, {
          trace_no: v.traceNo ?? null,
          rrn: v.rrn ?? null,
          reason: `settled by the sweep (${v.source})`,
        });
      else Object.assign(set, { reason: v.reason.slice(0, 255), rc: v.rc ?? null });
      await moveLeg(m, leg.id, 'unknown', v.to, now, set);
      await audit(m, {
        actor: 'system:sweeper',
        entity: 'refund_leg',
        entityId: leg.id,
        action: 'settle',
        before: { status: 'unknown' },
        after: { status: v.to, rf: leg.rf },
        at: now,
      });
    });
  }
}
