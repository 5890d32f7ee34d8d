import { Db, exec, rows } from '../db/db';
import { Acquirer } from '../acquirer/acquirer';
import { Terminal } from '../terminal/terminal';
import { Clock } from '../shared/clock';
import { Logger } from '../shared/logger';
import { DomainError } from '../shared/errors';
import { Metrics } from '../http/metrics';
import { OrdersService } from '../orders/orders.service';
import { Payment } from '../payments/payment.entity';
import { PaymentsService } from '../payments/payments.service';
import type { Columns } from '../payments/settle-batch';
import { TerminalCardDriver } from '../payments/card-flow';
import { LaneLeases } from '../payments/lane-lease';
import { nextCheckDelayMs } from './schedule';
import { claimDue, deferClaimed, markOrphanedPending } from './claim';
import { ResolutionPolicy } from './policy';
import { Reversals } from './reversals';
import { Refunds } from './refunds';
import { Verdict } from './verdict';
import { SweepWrites } from './writes';

export interface SweepReport {
  queried: number;
  approved: number;
  failed: number;
  stillUnknown: number;
  suspense: number;
  expired: number;
  refunds: number;
  /** Final statuses that verified evidence now contradicts (moved to `disputed`). */
  disputed: number;
  /** `pending` attempts nobody drove any more, now unknown. */
  orphaned: number;
  /** What each added step reported (e.g. refund legs settled). */
  steps?: Record<string, number>;
}

export interface SweeperOptions {
  instanceId: string;
  /** How long an attempt may stay unknown before it is parked in suspense (default 24 h). */
  suspenseAfterMs: number;
  /** How long after the outcome became unknown a reversal may be sent (lets the quick queries answer first). */
  reversalGraceMs: number;
  /** How long a claim protects an attempt from other instances. */
  claimMs: number;
  batchSize: number;
  concurrency: number;
  /** Units of work (claim renewals, reversals recorded as sent, verdicts) committed per transaction at most (default 64). */
  writeBatch?: number;
}

/**
 * One sweep: renew the lane leases, give unowned `pending` attempts an outcome of unknown, resolve
 * the due unknown attempts (claim → ask → record), expire holds that have no live payment, and
 * send, recover and check refunds. Stock is released only on a confirmed failure; everything else
 * keeps it held. Attempts are claimed in a short transaction and worked outside any transaction.
 */
export class Sweeper {
  private running: Promise<SweepReport> | null = null;
  private readonly policy: ResolutionPolicy;
  private readonly refunds: Refunds;
  private readonly steps: { name: string; step: () => Promise<number> }[] = [];
  /** The writes of the attempts being worked at the same moment share a transaction (see writes.ts). */
  readonly writes: SweepWrites;
  /**
   * When the acquirer asked for quiet (a verdict's `quietMs`: respCode 37, queries too frequent), and until
   * when: no attempt is worked in between, in this sweep or the next. Before, only the rate-limited attempt
   * was put off, and the rest of a backlog went on being asked, hundreds a second, into the same refusal.
   */
  private quietFrom = 0;
  private quietUntil = 0;

  constructor(
    private readonly db: Db,
    private readonly payments: PaymentsService,
    private readonly orders: OrdersService,
    terminals: Map<string, Terminal>,
    private readonly cards: TerminalCardDriver | null,
    acquirer: Acquirer | null,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly opts: SweeperOptions,
    private readonly leases: LaneLeases | null = null,
  ) {
    // A verdict waits up to 3 ms for company: nobody waits on the sweeper, and fuller transactions leave more
    // of the two cores to the checks (bench:sweep, alternating runs: 534 / 472 / 482 / 526 resolutions/s
    // against 511 / 453 / 461 / 516 with 1 ms).
    this.writes = new SweepWrites(
      db,
      { instanceId: opts.instanceId, claimMs: opts.claimMs, maxSize: opts.writeBatch ?? 64, maxWaitMs: 3 },
      (m, verdicts, first) => payments.settleManyIn(m, verdicts, first),
      metrics.batchObserver(),
    );
    const reversals = new Reversals(
      (id, now) => this.writes.markReversalSent(id, now),
      acquirer,
      clock,
      log,
      metrics,
      opts.reversalGraceMs,
    );
    this.policy = new ResolutionPolicy(terminals, cards, acquirer, reversals, metrics, log);
    this.refunds = new Refunds(db, terminals, cards, acquirer, clock, log, (m, lanes) => payments.moneyTime(m, lanes));
  }

  /** One sweep; a call while one is running waits for that one instead of starting another. */
  sweep(): Promise<SweepReport> {
    if (!this.running)
      this.running = this.sweepOnce().finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /** A capability's own sweep work (refund legs), run at the end of each sweep; its count lands in report.steps. */
  addStep(name: string, step: () => Promise<number>): void {
    this.steps.push({ name, step });
  }

  /** Resolves when no sweep is running (for shutdown). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
    await this.writes.idle();
  }

  private async sweepOnce(): Promise<SweepReport> {
    const report: SweepReport = {
      queried: 0,
      approved: 0,
      failed: 0,
      stillUnknown: 0,
      suspense: 0,
      expired: 0,
      refunds: 0,
      disputed: 0,
      orphaned: 0,
    };
    // Renewing first means this sweep's view of "my lanes" is current (and a lane whose owner died is taken over).
    await this.leases?.tick().catch((err) => this.log.warn('lane lease renewal failed', { err: String(err) }));
    report.orphaned = await markOrphanedPending(
      this.db,
      this.payments,
      this.cards,
      this.clock.now().getTime(),
      this.log,
    );
    await this.workDue(report);
    report.expired = await this.orders.expireDue();
    await this.refunds.recoverInterrupted();
    report.refunds = await this.refunds.process();
    // The refunds' own checks keep the acquirer's quiet too, and a 37 to one of them starts it.
    report.refunds += await this.refunds.checkUnknown({
      on: () => this.quiet(),
      asked: (ms) => this.askedForQuiet(ms),
    });
    for (const [k, v] of Object.entries(report))
      this.metrics.counter('pos_sweeper_outcomes_total', 'Sweeper outcomes by kind').inc({ outcome: k }, v);
    if (this.steps.length) report.steps = {};
    for (const s of this.steps) {
      try {
        report.steps![s.name] = await s.step();
      } catch (err) {
        this.log.error('sweep step failed', { step: s.name, err: String(err) });
      }
    }
    return report;
  }

  /**
   * Claims due attempts a batch at a time and works them `concurrency` at a time, until a claim comes
   * back short. When a batch is larger than the workers, the next batch is claimed as soon as the last
   * attempts of the current one are handed out, so the workers do not wait for the slowest attempt of
   * each batch. A batch no larger than the workers is worked to its end before the next claim: claiming
   * back to back would leave no gap for the other instances' claims (the work would not be shared).
   */
  private async workDue(report: SweepReport): Promise<void> {
    const { batchSize, concurrency } = this.opts;
    await this.learnQuiet().catch((err) => this.log.warn('could not read the acquirer quiet', { err: String(err) }));
    if (this.quiet()) return;
    let next = claimDue(this.db, this.clock.now().getTime(), this.opts);
    for (;;) {
      const claimed = await next;
      if (claimed.length === 0) return;
      const full = claimed.length >= batchSize;
      let prefetched = false;
      const queue = [...claimed];
      const putBack: string[] = [];
      await Promise.all(
        Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
          for (let p = queue.shift(); p; p = queue.shift()) {
            if (this.quiet()) {
              putBack.push(p.id);
              continue;
            }
            if (queue.length === 0 && full && batchSize > concurrency && !prefetched) {
              prefetched = true;
              next = claimDue(this.db, this.clock.now().getTime(), this.opts);
              next.catch(() => undefined); // awaited below; a failure then fails the sweep as before
            }
            await this.work(p, report);
          }
        }),
      );
      if (this.quiet()) {
        // The batch claimed ahead is given back too; the next sweep after the quiet takes them all again.
        if (prefetched) putBack.push(...(await next).map((p) => p.id));
        await deferClaimed(this.db, putBack, this.quietUntil, this.opts.instanceId);
        if (putBack.length)
          this.log.warn('acquirer asked for quiet; attempts put back until then', {
            until: new Date(this.quietUntil).toISOString(),
            attempts: putBack.length,
          });
        return;
      }
      if (!full) return;
      if (!prefetched) next = claimDue(this.db, this.clock.now().getTime(), this.opts);
    }
  }

  /**
   * The acquirer asked for quiet for `ms` from now (a 37): nothing is asked of it until then, in this sweep
   * or the next, by this instance or (from their next sweep on) the others, which read it from the
   * `acquirer_quiet` row. A failure to write the row leaves the others to learn it from their own 37, as
   * before the row existed; this instance keeps it either way.
   */
  private async askedForQuiet(ms: number): Promise<void> {
    const at = this.clock.now().getTime();
    this.keepQuiet(at, at + ms);
    try {
      await this.db.tx((m) =>
        exec(
          m,
          "UPDATE acquirer_quiet SET quiet_from = ?, quiet_until = ?, by_instance = ?, updated_at = ? WHERE id = 'acquirer' AND quiet_until < ?",
          [this.quietFrom, this.quietUntil, this.opts.instanceId, at, this.quietUntil],
        ),
      );
    } catch (err) {
      this.log.warn("could not share the acquirer's request for quiet", { err: String(err) });
    }
  }

  /** Quiet from `from` to `until`: a window that starts while one is on extends it. */
  private keepQuiet(from: number, until: number): void {
    if (this.quiet()) this.quietUntil = Math.max(this.quietUntil, until);
    else [this.quietFrom, this.quietUntil] = [from, until];
  }

  /** The quiet another instance was asked for (the `acquirer_quiet` row), kept when it is on now. */
  private async learnQuiet(): Promise<void> {
    const [row] = await this.db.read((m) =>
      rows<{ quiet_from: unknown; quiet_until: unknown; by_instance: string }>(
        m,
        "SELECT quiet_from, quiet_until, by_instance FROM acquirer_quiet WHERE id = 'acquirer'",
      ),
    );
    if (!row) return;
    const [from, until] = [Number(row.quiet_from), Number(row.quiet_until)];
    const now = this.clock.now().getTime();
    if (now < from || now >= until || (this.quiet() && until <= this.quietUntil)) return;
    this.keepQuiet(from, until);
    if (row.by_instance !== this.opts.instanceId)
      this.log.info('the acquirer asked another instance for quiet; leaving it alone until then', {
        until: new Date(until).toISOString(),
        by: row.by_instance,
      });
  }

  /** True while the acquirer's request for quiet lasts; once it is over (or the clock was stepped back before it), it is forgotten. */
  private quiet(): boolean {
    const now = this.clock.now().getTime();
    if (now >= this.quietFrom && now < this.quietUntil) return true;
    this.quietFrom = this.quietUntil = 0;
    return false;
  }

  private async work(p: Payment, report: SweepReport): Promise<void> {
    // Its claim may have lapsed while it waited in the batch, and another instance be working it now.
    // A claim this instance made moments ago (nine tenths of it left: 4.5 of 5 minutes) still covers the
    // longest check — terminal query, acquirer query and reversal, each bounded by its time-outs — and is
    // not renewed; an older one is renewed (and read back) first. A database error there leaves the claim
    // to lapse on its own, like a failed recording.
    const now = this.clock.now().getTime();
    const fresh = p.claimUntil != null && p.claimUntil - now >= this.opts.claimMs * 0.9;
    const ours =
      fresh ||
      (await this.writes.renewClaim(p.id, now).catch((err) => {
        this.log.warn('sweeper could not renew a claim', { paymentId: p.id, err: String(err) });
        return false;
      }));
    if (!ours) {
      this.log.info('claim lapsed before the check; another instance has it or it was settled', { paymentId: p.id });
      return;
    }
    report.queried++;
    let verdict: Verdict;
    try {
      verdict = await this.policy.ask(p);
    } catch (err) {
      this.log.error('sweeper check failed', { paymentId: p.id, err: String(err) });
      verdict = { kind: 'unknown', reason: 'check_failed' };
    }
    if (verdict.kind === 'unknown' && verdict.quietMs) await this.askedForQuiet(verdict.quietMs);
    try {
      await this.record(p, verdict, report);
    } catch (err) {
      this.log.warn('sweeper could not record a verdict', { paymentId: p.id, verdict: verdict.kind, err: String(err) });
    }
  }

  private async record(p: Payment, verdict: Verdict, report: SweepReport): Promise<void> {
    const actor = 'system:sweeper';
    try {
      if (verdict.kind === 'approved') {
        await this.writes.settle({
          kind: 'approve',
          paymentId: p.id,
          orderId: p.orderId,
          lane: p.lane,
          facts: verdict.facts,
          actor: `${actor}:${verdict.source}`,
          checked: true,
        });
        this.payments.changed(p.id);
        report.approved++;
      } else if (verdict.kind === 'failed') {
        await this.writes.settle({
          kind: 'fail',
          paymentId: p.id,
          to: verdict.to,
          info: { rc: verdict.rc, reason: verdict.reason },
          actor,
          checked: true,
          terminalReversal: verdict.terminalReversal,
        });
        this.payments.changed(p.id);
        report.failed++;
      } else {
        const parked = await this.reschedule(p, verdict);
        if (parked) report.suspense++;
        else report.stillUnknown++;
      }
    } catch (err) {
      if (
        !(err instanceof DomainError) ||
        !['payment_changed', 'payment_transition_refused'].includes(err.code) ||
        verdict.kind === 'unknown'
      )
        throw err;
      // Settled by another hand meanwhile (a person's resolve): first wins; a verified answer that disagrees makes it disputed.
      const says = verdict.kind === 'approved' ? 'charged' : 'not_charged';
      const source = verdict.kind === 'approved' ? verdict.source : 'terminal';
      const r = await this.payments.contest(
        p.id,
        says,
        {
          source,
          detail: {
            verdict: verdict.kind,
            ...(verdict.kind === 'approved' ? verdict.facts : { reason: verdict.reason, rc: verdict.rc }),
          },
        },
        actor,
      );
      if (r === 'disputed') report.disputed++;
      this.log.warn('a verdict arrived after the payment was settled by another hand', {
        paymentId: p.id,
        verdict: verdict.kind,
        result: r,
      });
    }
  }

  /** Schedules the next check; past the deadline (or when told) an unknown attempt is parked in suspense, stock still held. */
  private async reschedule(p: Payment, v: Extract<Verdict, { kind: 'unknown' }>): Promise<boolean> {
    const now = this.clock.now().getTime();
    const checks = p.checks + 1;
    const delay = Math.max(nextCheckDelayMs(checks), v.quietMs ?? 0);
    const overdue =
      p.status === 'unknown' && (v.suspense || now - (p.unknownSince ?? p.createdAt) >= this.opts.suspenseAfterMs);
    const set: Columns = {
      checks,
      next_check_at: now + (overdue || p.status === 'suspense' ? Math.max(delay, 3600_000) : delay),
      claimed_by: null,
      claim_until: null,
      reason: v.reason.slice(0, 255),
    };
    if (v.reversalState) set.reversal_state = v.reversalState;
    if (v.terminalReversal) set.terminal_reversal = v.terminalReversal;
    // Written only while the attempt is still what was claimed; settled meanwhile, nothing is scheduled.
    return this.writes.settle({
      kind: 'recheck',
      paymentId: p.id,
      from: p.status,
      set,
      park: overdue ? { reason: v.reason } : null,
    });
  }
}
