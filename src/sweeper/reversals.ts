import { Acquirer } from '../acquirer/acquirer';
import { Metrics } from '../http/metrics';
import { Payment } from '../payments/payment.entity';
import { Clock, parseChinaTimestamp } from '../shared/clock';
import { Logger } from '../shared/logger';
import { reversalAllowed } from './schedule';
import { Verdict } from './verdict';

/**
 * ACP reversals (冲正, txnType 99) of attempts still unknown. A reversal is recorded ('sent') before
 * it goes out, so a crash mid-call is visible: the next check treats 'sent' as "outcome unknown" and
 * may send the same reversal again (same orderId and txnTime: the acquirer reverses once). A refusal
 * is kept as 'refused' and the original's status is asked for instead.
 */
export class Reversals {
  constructor(
    /** Records a reversal as about to be sent; resolves once that is committed (the sweeper's shared transactions, see writes.ts). */
    private readonly markSent: (paymentId: string, now: number) => Promise<void>,
    private readonly acquirer: Acquirer | null,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly graceMs: number,
  ) {}

  /** True while the attempt is within its reversal window (the acquirer day it was made on, before 23:00 China time). */
  withinWindow(p: Payment): boolean {
    return !!p.txnTime && reversalAllowed(parseChinaTimestamp(p.txnTime), this.clock.now());
  }

  /** True when a reversal may still be sent for this attempt now (within the window, an acquirer to send it to). */
  allowedNow(p: Payment): boolean {
    return !!this.acquirer && this.withinWindow(p);
  }

  /**
   * Still unknown (`why`): past the grace period and before the 23:00 cut-off, ask the acquirer to
   * reverse it. `urgent` skips the grace period (the terminal's own reversal is pending, so the
   * acquirer's "approved" will not stand: cancel it where we can).
   */
  async maybeReverse(
    p: Payment,
    why: string,
    urgent = false,
  ): Promise<Extract<Verdict, { kind: 'unknown' }> | Extract<Verdict, { kind: 'failed' }>> {
    const now = this.clock.now();
    if (!this.acquirer || !p.rf || !p.txnTime) return { kind: 'unknown', reason: why };
    if (p.reversalState === 'refused') return { kind: 'unknown', reason: 'reversal_refused' };
    const since = p.unknownSince ?? p.createdAt;
    if (!urgent && now.getTime() - since < this.graceMs) return { kind: 'unknown', reason: why };
    if (!this.allowedNow(p)) return { kind: 'unknown', reason: 'past_reversal_cutoff' };
    if (p.reversalState === 'sent')
      this.log.warn('a reversal was recorded as sent with no answer (crash?); sending the same reversal again', {
        paymentId: p.id,
        rf: p.rf,
      });
    // Recorded before it is sent, so a crash mid-call is visible to the next check.
    await this.markSent(p.id, now.getTime());
    const r = await this.acquirer.reverse({ orderId: p.rf, txnTime: p.txnTime, amountFen: p.amountFen });
    this.metrics.counter('pos_acquirer_reversals_total', 'Reversals by result').inc({ result: r.kind });
    switch (r.kind) {
      case 'reversed':
        return { kind: 'failed', to: 'reversed', rc: r.respCode, reason: 'reversed_at_acquirer' };
      case 'refused':
        this.log.info('reversal refused; asking for the original instead', { paymentId: p.id, respCode: r.respCode });
        return { kind: 'unknown', reason: 'reversal_refused', reversalState: 'refused' };
      default:
        this.log.info('reversal outcome unknown', {
          paymentId: p.id,
          result: r.kind,
          detail: 'reason' in r ? r.reason : r.respCode,
        });
        return { kind: 'unknown', reason: 'reversal_outcome_unknown', reversalState: 'unknown' };
    }
  }
}
