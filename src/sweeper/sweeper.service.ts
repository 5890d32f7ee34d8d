import { EntityManager, In } from 'typeorm';
import { Db, exec, placeholders, rows } from '../db/db';
import { Acquirer } from '../acquirer/acquirer';
import { Terminal } from '../terminal/terminal';
import { Clock, chinaTimestamp, parseChinaTimestamp } from '../shared/clock';
import { Logger } from '../shared/logger';
import { Metrics } from '../http/metrics';
import { OrdersService } from '../orders/orders.service';
import { Payment } from '../payments/payment.entity';
import { PaymentsService } from '../payments/payments.service';
import { TerminalCardDriver } from '../payments/card-flow';
import { nextCheckDelayMs, reversalAllowed } from './schedule';
import { audit } from '../audit/audit.service';

export interface SweepReport {
  queried: number;
  approved: number;
  failed: number;
  stillUnknown: number;
  suspense: number;
  expired: number;
  refunds: number;
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
}

type Verdict =
  | { kind: 'approved'; facts: Parameters<PaymentsService['settleApproved']>[1]; source: string }
  | { kind: 'failed'; to: 'declined' | 'reversed'; rc?: string; reason: string }
  | { kind: 'unknown'; reason: string; backoffMs?: number; reversalState?: string };

/**
 * Resolves card attempts whose outcome is unknown, then expires holds that have no live payment.
 * Stock is released only on a confirmed failure; everything else keeps it held. Attempts are claimed
 * in a short transaction (SKIP LOCKED on MySQL/MariaDB) and worked outside any transaction.
 */
export class Sweeper {
  private running: Promise<SweepReport> | null = null;
  private readonly steps: { name: string; step: () => Promise<number> }[] = [];

  constructor(
    private readonly db: Db,
    private readonly payments: PaymentsService,
    private readonly orders: OrdersService,
    private readonly terminals: Map<string, Terminal>,
    private readonly cards: TerminalCardDriver | null,
    private readonly acquirer: Acquirer | null,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly opts: SweeperOptions,
  ) {}

  /** One sweep; a call while one is running waits for that one instead of starting another. */
  sweep(): Promise<SweepReport> {
    if (!this.running) this.running = this.sweepOnce().finally(() => { this.running = null; });
    return this.running;
  }

  /** A capability's own sweep work (refund legs), run at the end of each sweep; its count lands in report.steps. */
  addStep(name: string, step: () => Promise<number>): void {
    this.steps.push({ name, step });
  }

  /** Resolves when no sweep is running (for shutdown). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private async sweepOnce(): Promise<SweepReport> {
    const report: SweepReport = { queried: 0, approved: 0, failed: 0, stillUnknown: 0, suspense: 0, expired: 0, refunds: 0 };
    await this.markOrphanedPending();
    for (;;) {
      const claimed = await this.claim();
      if (claimed.length === 0) break;
      await runLimited(claimed, this.opts.concurrency, (p) => this.work(p, report));
      if (claimed.length < this.opts.batchSize) break;
    }
    report.expired = await this.orders.expireDue();
    report.refunds = await this.processRefunds();
    for (const [k, v] of Object.entries(report)) this.metrics.counter('pos_sweeper_outcomes_total', 'Sweeper outcomes by kind').inc({ outcome: k }, v);
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

  /** A pending attempt nobody in this process drives any more (its recording failed) is unknown, never declined. */
  private async markOrphanedPending(): Promise<void> {
    if (!this.cards) return;
    const lanes = this.cards.lanes();
    if (!lanes.length) return;
    const before = this.clock.now().getTime() - 10_000;
    const stale = await this.db.read((m) => rows<{ id: string }>(m,
      `SELECT id FROM payment WHERE status = 'pending' AND method = 'card' AND updated_at < ? AND lane IN (${placeholders(lanes.length)})`, [before, ...lanes]));
    for (const { id } of stale) {
      if (this.cards.isInFlight(id)) continue;
      await this.payments.markUnknown(id, { reason: 'no outcome was recorded for this attempt' }, 'system:sweeper').catch(() => undefined);
    }
  }

  /**
   * Claims due attempts for this instance. One status per query, so MySQL/MariaDB walks the
   * (status, next_check_at) index in order and stops at the limit: only the rows it returns are
   * locked, and SKIP LOCKED lets other instances take the next ones at the same moment.
   */
  private async claim(): Promise<Payment[]> {
    const now = this.clock.now().getTime();
    return this.db.tx(async (m) => {
      const ids: string[] = [];
      for (const status of ['unknown', 'suspense']) {
        const room = this.opts.batchSize - ids.length;
        if (room <= 0) break;
        const due = await rows<{ id: string }>(m,
          `SELECT id FROM payment${this.db.kind === 'mysql' ? ' FORCE INDEX (ix_payment_status_due)' : ''} WHERE status = ? AND next_check_at <= ?
             AND (claim_until IS NULL OR claim_until < ?) ORDER BY next_check_at LIMIT ${Number(room)}${this.db.forUpdateSkipLocked}`,
          [status, now, now]);
        ids.push(...due.map((d) => d.id));
      }
      if (ids.length === 0) return [];
      // The claim is itself conditional and read back: on Galera the read above takes no lock, so another
      // node may have claimed (or settled) some of these since; only the rows this UPDATE changed are ours.
      const until = now + this.opts.claimMs;
      await exec(m, `UPDATE payment SET claimed_by = ?, claim_until = ? WHERE id IN (${placeholders(ids.length)})
         AND status IN ('unknown', 'suspense') AND next_check_at <= ? AND (claim_until IS NULL OR claim_until < ?)`,
        [this.opts.instanceId, until, ...ids, now, now]);
      return m.find(Payment, { where: { id: In(ids), claimedBy: this.opts.instanceId, claimUntil: until } });
    });
  }

  private async work(p: Payment, report: SweepReport): Promise<void> {
    report.queried++;
    let verdict: Verdict;
    try {
      verdict = await this.ask(p);
    } catch (err) {
      this.log.error('sweeper check failed', { paymentId: p.id, err: String(err) });
      verdict = { kind: 'unknown', reason: `check failed: ${String(err)}` };
    }
    try {
      if (verdict.kind === 'approved') {
        await this.payments.settleApproved(p.id, verdict.facts, `system:sweeper:${verdict.source}`);
        report.approved++;
      } else if (verdict.kind === 'failed') {
        await this.payments.settleFailed(p.id, verdict.to, { rc: verdict.rc, reason: verdict.reason }, 'system:sweeper');
        report.failed++;
      } else {
        const parked = await this.reschedule(p, verdict);
        if (parked) report.suspense++;
        else report.stillUnknown++;
      }
    } catch (err) {
      // Lost a race (another instance or a person settled it): nothing to do.
      this.log.warn('sweeper could not record a verdict', { paymentId: p.id, verdict: verdict.kind, err: String(err) });
    }
  }

  /** Asks the lane's terminal when it is reachable and idle, else (or when it cannot tell) the acquirer. */
  private async ask(p: Payment): Promise<Verdict> {
    const terminal = p.lane ? this.terminals.get(p.lane) : undefined;
    if (terminal && terminal.isConnected() && terminal.isIdle()) {
      const v = await this.askTerminal(terminal, p);
      if (v) return v;
    }
    return this.askAcquirer(p);
  }

  private async askTerminal(t: Terminal, p: Payment): Promise<Verdict | null> {
    const started = Date.now();
    let q = await t.query(p.rf!);
    if (q.kind === 'status' && q.status === 'P') {
      // The terminal holds a reversal it has not sent: sign-in flushes it, then the journal says R.
      await t.signIn();
      q = await t.query(p.rf!);
    }
    this.metrics.observe('pos_sweeper_query_seconds', 'Status query latency', (Date.now() - started) / 1000, { to: 'terminal' });
    if (q.kind !== 'status') return null;
    switch (q.status) {
      case 'A':
        return { kind: 'approved', source: 'terminal', facts: { traceNo: q.traceNo ?? null, rrn: q.rrn ?? null, terminalTime: q.txnDate && q.txnTime ? q.txnDate + q.txnTime : null } };
      case 'D':
        return { kind: 'failed', to: 'declined', reason: 'terminal journal: declined' };
      case 'R':
        return { kind: 'failed', to: 'reversed', reason: 'terminal journal: reversed, the customer was not charged' };
      case 'V':
        return { kind: 'failed', to: 'reversed', reason: 'terminal journal: voided after approval, the customer was not charged' };
      case 'N':
        // N is a confirmed failure only for a request the terminal never ACKed; otherwise its journal was lost.
        return p.acked ? null : { kind: 'failed', to: 'declined', reason: 'terminal never accepted this request' };
      case 'P':
        return { kind: 'unknown', reason: 'terminal reversal still pending' };
    }
  }

  private async askAcquirer(p: Payment): Promise<Verdict> {
    if (!this.acquirer || !p.rf || !p.txnTime) return { kind: 'unknown', reason: 'no acquirer configured' };
    const ref = { orderId: p.rf, txnTime: p.txnTime };
    const started = Date.now();
    const a = await this.acquirer.query(ref);
    this.metrics.observe('pos_sweeper_query_seconds', 'Status query latency', (Date.now() - started) / 1000, { to: 'acquirer' });
    this.metrics.counter('pos_acquirer_queries_total', 'Acquirer status queries by result').inc({ result: a.kind });
    switch (a.kind) {
      case 'approved':
        return { kind: 'approved', source: 'acquirer', facts: { queryId: a.queryId ?? null, traceNo: a.traceNo ?? null, settleDate: a.settleDate ?? null } };
      case 'failed':
        return { kind: 'failed', to: 'declined', rc: a.origRespCode, reason: `acquirer: original transaction failed (${a.origRespCode})` };
      case 'rate_limited':
        return { kind: 'unknown', reason: 'acquirer rate limit (37): backing off', backoffMs: 60_000 };
      default:
        return this.maybeReverse(p, `acquirer: ${a.kind}${'respCode' in a && a.respCode ? ` (${a.respCode})` : ''}`);
    }
  }

  /** Still unknown: past the grace period and before the 23:00 cut-off, ask the acquirer to reverse it. */
  private async maybeReverse(p: Payment, why: string): Promise<Verdict> {
    const now = this.clock.now();
    if (p.reversalState === 'refused' || !this.acquirer) return { kind: 'unknown', reason: why };
    const since = p.unknownSince ?? p.createdAt;
    if (now.getTime() - since < this.opts.reversalGraceMs) return { kind: 'unknown', reason: why };
    if (!reversalAllowed(parseChinaTimestamp(p.txnTime!), now)) return { kind: 'unknown', reason: `${why}; past the reversal cut-off, waiting for queries or reconciliation` };
    // Recorded before it is sent, so a crash mid-call is visible to the next check.
    await this.db.tx((m) => exec(m, "UPDATE payment SET reversal_state = 'sent', updated_at = ? WHERE id = ?", [now.getTime(), p.id]));
    const r = await this.acquirer.reverse({ orderId: p.rf!, txnTime: p.txnTime!, amountFen: p.amountFen });
    this.metrics.counter('pos_acquirer_reversals_total', 'Reversals by result').inc({ result: r.kind });
    switch (r.kind) {
      case 'reversed':
        return { kind: 'failed', to: 'reversed', rc: r.respCode, reason: 'reversed at the acquirer: the customer was not charged' };
      case 'refused':
        return { kind: 'unknown', reason: `reversal refused (${r.respCode}); asking for the original's status`, reversalState: 'refused' };
      default:
        return { kind: 'unknown', reason: `${why}; reversal outcome unknown` };
    }
  }

  /** Schedules the next check; past the deadline an unknown attempt is parked in suspense, stock still held. */
  private async reschedule(p: Payment, v: Extract<Verdict, { kind: 'unknown' }>): Promise<boolean> {
    const now = this.clock.now().getTime();
    const checks = p.checks + 1;
    const delay = Math.max(nextCheckDelayMs(checks), v.backoffMs ?? 0);
    const overdue = p.status === 'unknown' && now - (p.unknownSince ?? p.createdAt) >= this.opts.suspenseAfterMs;
    await this.db.tx(async (m: EntityManager) => {
      const set = [`checks = ?`, `next_check_at = ?`, `claimed_by = NULL`, `claim_until = NULL`, `reason = ?`, `updated_at = ?`];
      const params: (string | number)[] = [checks, now + (overdue || p.status === 'suspense' ? Math.max(delay, 3600_000) : delay), v.reason.slice(0, 255), now];
      if (v.reversalState) { set.push('reversal_state = ?'); params.push(v.reversalState); }
      if (overdue) set.push(`status = 'suspense'`);
      const n = await exec(m, `UPDATE payment SET ${set.join(', ')} WHERE id = ? AND status = ?`, [...params, p.id, p.status]);
      if (n === 1 && overdue) {
        await audit(m, { actor: 'system:sweeper', entity: 'payment', entityId: p.id, action: 'suspense', before: { status: 'unknown' }, after: { status: 'suspense', reason: v.reason }, at: now });
      }
    });
    return overdue;
  }

  /** Gives back card money an order did not need (overpaid): void in the open batch, else refund. */
  private async processRefunds(): Promise<number> {
    if (!this.cards) return 0;
    const lanes = this.cards.lanes();
    if (!lanes.length) return 0;
    const queued = await this.db.read((m) => m.createQueryBuilder(Payment, 'p')
      .where("p.refund_state = 'queued' AND p.lane IN (:...lanes)", { lanes }).limit(20).getMany());
    let done = 0;
    for (const p of queued) {
      const t = this.terminals.get(p.lane!);
      if (!t || !t.isConnected() || !t.isIdle()) continue;
      const now = this.clock.now();
      const claimed = await this.db.tx((m) => exec(m, "UPDATE payment SET refund_state = 'in_progress', updated_at = ? WHERE id = ? AND refund_state = 'queued'", [now.getTime(), p.id]));
      if (claimed !== 1) continue;
      const amount = p.refundFen ?? p.amountFen;
      const rf = `${p.rf!.slice(0, 29)}-RF`;
      // The terminal's batch day is China's calendar day, like its DT field.
      const today = chinaTimestamp(now).slice(0, 8);
      const canVoid = p.terminalTime?.slice(0, 8) === today && amount === p.amountFen && !!p.traceNo;
      let state: 'done' | 'failed' | 'unknown' | 'manual';
      let via: 'V0' | 'R0' | 'none' = 'none';
      let outcomeKind = 'not sent';
      if (!canVoid && !p.rrn) {
        // Approved by the acquirer with no terminal reference to refund against: a person refunds it.
        state = 'manual';
      } else {
        via = canVoid ? 'V0' : 'R0';
        const outcome = canVoid
          ? await t.voidSale({ rf, amountFen: amount, traceNo: p.traceNo! })
          : await t.refund({ rf, amountFen: amount, rrn: p.rrn!, originalDate: (p.terminalTime ?? today).slice(0, 8) });
        outcomeKind = outcome.kind;
        state = outcome.kind === 'approved' ? 'done' : outcome.kind === 'unknown' ? 'unknown' : 'failed';
      }
      await this.db.tx(async (m) => {
        await exec(m, 'UPDATE payment SET refund_state = ?, updated_at = ? WHERE id = ?', [state, this.clock.now().getTime(), p.id]);
        await audit(m, { actor: 'system:sweeper', entity: 'payment', entityId: p.id, action: 'refund', after: { state, amountFen: amount, via, outcome: outcomeKind }, at: this.clock.now().getTime() });
      });
      if (state === 'done') done++;
    }
    return done;
  }
}

async function runLimited<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}
