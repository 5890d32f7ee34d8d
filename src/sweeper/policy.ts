import { Acquirer } from '../acquirer/acquirer';
import { Metrics } from '../http/metrics';
import { Payment } from '../payments/payment.entity';
import { TerminalCardDriver } from '../payments/card-flow';
import { Terminal } from '../terminal/terminal';
import { Logger } from '../shared/logger';
import { Reversals } from './reversals';
import { Verdict } from './verdict';

/** How long the acquirer is left alone after it answers 37 (queries too frequent): its minute. */
export const ACQUIRER_QUIET_MS = 60_000;

/**
 * Who to ask about an unknown attempt, and what their answer means. The lane's terminal first,
 * when this instance drives the lane and the terminal is idle; else (or when it cannot tell) the
 * acquirer. A sale the terminal holds a reversal for (RC 98, Q0 `P`) is never settled approved
 * from the acquirer: the terminal reverses it before its next online transaction. Its ways out are
 * the terminal's own L0 flush then Q0 `R`, an ACP reversal answered 00, or — past the reversal
 * window with the terminal unreachable — suspense for the T+1 file.
 */
export class ResolutionPolicy {
  constructor(
    private readonly terminals: Map<string, Terminal>,
    private readonly cards: TerminalCardDriver | null,
    private readonly acquirer: Acquirer | null,
    private readonly reversals: Reversals,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** The lane's terminal, when this instance may use it now. */
  private terminalFor(p: Payment): Terminal | null {
    if (!p.lane || !this.cards?.holdsLane(p.lane)) return null;
    const t = this.terminals.get(p.lane);
    return t && t.isConnected() && t.isIdle() ? t : null;
  }

  async ask(p: Payment): Promise<Verdict> {
    const terminal = this.terminalFor(p);
    const learnt = { terminalReversal: p.terminalReversal === 'pending' };
    if (terminal) {
      const v = await this.askTerminal(terminal, p, learnt);
      if (v) return v;
    }
    const v = await this.askAcquirer(p, learnt.terminalReversal);
    if (v.kind !== 'unknown' || !learnt.terminalReversal) return v;
    // The terminal's reversal is still pending. Past the reversal window, with no terminal to flush it, only the T+1 file can tell.
    const parked = !terminal && !this.reversals.withinWindow(p);
    return {
      ...v,
      terminalReversal: 'pending',
      suspense: parked || v.suspense,
      reason: parked ? 'terminal_reversal_unsettled' : v.reason,
    };
  }

  private async askTerminal(t: Terminal, p: Payment, learnt: { terminalReversal: boolean }): Promise<Verdict | null> {
    const started = Date.now();
    let q = await t.query(p.rf!);
    if (q.kind === 'status' && q.status === 'P') {
      learnt.terminalReversal = true;
      // The terminal holds a reversal it has not sent: sign-in flushes it, then the journal says R.
      const signIn = await t.signIn();
      if (!signIn.ok)
        this.log.info('sign-in to flush a pending reversal failed', {
          paymentId: p.id,
          rc: signIn.rc,
          reason: signIn.reason,
        });
      q = await t.query(p.rf!);
    }
    this.metrics.observe('pos_sweeper_query_seconds', 'Status query latency', (Date.now() - started) / 1000, {
      to: 'terminal',
    });
    if (q.kind !== 'status') return null;
    const flushed = learnt.terminalReversal ? { terminalReversal: 'flushed' as const } : {};
    switch (q.status) {
      case 'A':
        return {
          kind: 'approved',
          source: 'terminal',
          facts: {
            traceNo: q.traceNo ?? null,
            rrn: q.rrn ?? null,
            terminalTime: q.txnDate && q.txnTime ? q.txnDate + q.txnTime : null,
          },
        };
      case 'D':
        return { kind: 'failed', to: 'declined', reason: 'terminal_journal_declined', ...flushed };
      case 'R':
        return { kind: 'failed', to: 'reversed', reason: 'terminal_journal_reversed', ...flushed };
      case 'V':
        return { kind: 'failed', to: 'reversed', reason: 'terminal_journal_voided', ...flushed };
      case 'N':
        // N is a confirmed failure only for a request the terminal never ACKed; otherwise its journal was lost.
        return p.acked ? null : { kind: 'failed', to: 'declined', reason: 'terminal_never_accepted' };
      case 'P':
        return { kind: 'unknown', reason: 'terminal_reversal_pending', terminalReversal: 'pending' };
    }
  }

  private async askAcquirer(p: Payment, terminalReversal: boolean): Promise<Verdict> {
    if (!this.acquirer || !p.rf || !p.txnTime) return { kind: 'unknown', reason: 'no_acquirer' };
    const started = Date.now();
    const a = await this.acquirer.query({ orderId: p.rf, txnTime: p.txnTime });
    this.metrics.observe('pos_sweeper_query_seconds', 'Status query latency', (Date.now() - started) / 1000, {
      to: 'acquirer',
    });
    this.metrics.counter('pos_acquirer_queries_total', 'Acquirer status queries by result').inc({ result: a.kind });
    switch (a.kind) {
      case 'approved':
        if (terminalReversal) {
          // Approved at the bank for now, but the terminal will reverse it: selling the goods would give them away. Cancel it here if we still can.
          this.log.warn('acquirer says approved while the terminal holds a reversal of the sale; not settling it', {
            paymentId: p.id,
            rf: p.rf,
          });
          return this.reversals.maybeReverse(p, 'terminal_reversal_pending', true);
        }
        return {
          kind: 'approved',
          source: 'acquirer',
          facts: { queryId: a.queryId ?? null, traceNo: a.traceNo ?? null, settleDate: a.settleDate ?? null },
        };
      case 'failed':
        return terminalReversal
          ? {
              kind: 'failed',
              to: 'reversed',
              rc: a.origRespCode,
              reason: 'acquirer_original_failed',
              terminalReversal: 'flushed',
            }
          : { kind: 'failed', to: 'declined', rc: a.origRespCode, reason: 'acquirer_original_failed' };
      case 'rate_limited':
        return { kind: 'unknown', reason: 'acquirer_rate_limited', quietMs: ACQUIRER_QUIET_MS };
      default:
        this.log.info('acquirer could not tell', {
          paymentId: p.id,
          result: a.kind,
          respCode: 'respCode' in a ? a.respCode : undefined,
          detail: a.kind === 'no_answer' ? a.reason : undefined,
        });
        return this.reversals.maybeReverse(p, `acquirer_${a.kind}`);
    }
  }
}
