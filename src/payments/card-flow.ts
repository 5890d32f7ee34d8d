import { Terminal, SaleOutcome, ApprovedSale } from '../terminal/terminal';
import { Logger } from '../shared/logger';
import { Payment } from './payment.entity';
import { ApprovalFacts, CardDriver, PaymentsService } from './payments.service';
import { LaneLeases } from './lane-lease';

export function factsFromSale(s: ApprovedSale): ApprovalFacts {
  return {
    rc: s.rc,
    rm: s.rm ?? null,
    cardMasked: s.cardMasked ?? null,
    cardType: s.cardType ?? null,
    terminalId: s.terminalId ?? null,
    merchantId: s.merchantId ?? null,
    batchNo: s.batchNo ?? null,
    traceNo: s.traceNo ?? null,
    rrn: s.rrn ?? null,
    authCode: s.authCode ?? null,
    terminalTime: s.txnDate && s.txnTime ? s.txnDate + s.txnTime : null,
  };
}

/**
 * Drives a committed `pending` card attempt on its lane's terminal and records the outcome.
 * The attempt and its RF are in the database before the first byte goes on the line.
 */
export class TerminalCardDriver implements CardDriver {
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly terminals: Map<string, Terminal>,
    private readonly payments: PaymentsService,
    private readonly log: Logger,
    /** Without leases (a single instance by construction, e.g. tools) every configured lane is driven here. */
    readonly leases: LaneLeases | null = null,
  ) {}

  hasLane(lane: string): boolean {
    return this.terminals.has(lane);
  }

  async drivesLane(lane: string): Promise<boolean> {
    if (!this.terminals.has(lane)) return false;
    return this.leases ? this.leases.ensure(lane) : true;
  }

  /** Drives the lane now (holds its lease): only then may its terminal be used, by a payment, the sweeper or a refund. */
  holdsLane(lane: string): boolean {
    return this.terminals.has(lane) && (this.leases ? this.leases.holds(lane) : true);
  }

  isLaneIdle(lane: string): boolean {
    return this.terminals.get(lane)?.isIdle() ?? false;
  }

  /** The lanes this instance drives now. */
  lanes(): string[] {
    return [...this.terminals.keys()].filter((l) => this.holdsLane(l));
  }

  /** Every lane configured here, driven or waiting for its lease. */
  configuredLanes(): string[] {
    return [...this.terminals.keys()];
  }

  isInFlight(paymentId: string): boolean {
    return this.inFlight.has(paymentId);
  }

  start(p: Payment): void {
    this.inFlight.add(p.id);
    void this.run(p)
      .catch((err) =>
        this.log.error('card payment could not be recorded; it stays pending until the sweeper marks it unknown', {
          paymentId: p.id,
          err: String(err),
        }),
      )
      .finally(() => this.inFlight.delete(p.id));
  }

  /** Resolves when the terminal has answered and the outcome is recorded. */
  async run(p: Payment): Promise<void> {
    const terminal = this.terminals.get(p.lane!)!;
    let outcome: SaleOutcome;
    // Prompts are recorded one after another, and before the outcome, in the order the terminal sent them.
    let recorded: Promise<void> = Promise.resolve();
    const inOrder = (f: () => Promise<void>) =>
      (recorded = recorded
        .then(f)
        .catch((err) => this.log.warn('could not record terminal progress', { paymentId: p.id, err: String(err) })));
    try {
      outcome = await terminal.sale(
        { rf: p.rf!, amountFen: p.amountFen },
        {
          onAcked: () => inOrder(() => this.payments.markAcked(p.id)),
          onPrompt: (text) => inOrder(() => this.payments.addPrompt(p.id, text)),
        },
      );
      await recorded;
    } catch (err) {
      // The driver should classify everything itself; if it throws, nobody knows what reached the bank.
      this.log.error('terminal driver failed; the outcome is unknown', {
        paymentId: p.id,
        lane: p.lane,
        err: String(err),
      });
      outcome = { kind: 'unknown', reason: 'terminal_driver_failed', acked: true };
    }
    this.log.info('card outcome', {
      paymentId: p.id,
      lane: p.lane,
      rf: p.rf,
      outcome: outcome.kind,
      rc: 'rc' in outcome ? outcome.rc : undefined,
    });
    switch (outcome.kind) {
      case 'approved': {
        const facts = factsFromSale(outcome.sale);
        try {
          return await this.payments.settleApproved(p.id, facts, 'system:terminal');
        } catch (err) {
          // Settled meanwhile as a failure (a person, or the sweeper after this lane's lease ran out): the terminal's approval is evidence against it.
          const r = await this.payments.dispute(
            p.id,
            { source: 'terminal', detail: { ...facts, rf: p.rf } },
            'system:terminal',
          );
          if (r === 'not_applicable') throw err;
          this.log.warn('the terminal approved a payment already settled as a failure; disputed', {
            paymentId: p.id,
            result: r,
          });
          return;
        }
      }
      case 'declined':
        return this.payments.settleFailed(
          p.id,
          'declined',
          { rc: outcome.rc, rm: outcome.rm, reason: 'declined' },
          'system:terminal',
        );
      case 'not_executed':
        return this.payments.settleFailed(
          p.id,
          'declined',
          { rc: outcome.rc, rm: outcome.rm, reason: `not executed: ${outcome.reason}` },
          'system:terminal',
        );
      case 'unknown':
        return this.payments.markUnknown(
          p.id,
          { rc: outcome.rc, rm: outcome.rm, reason: outcome.reason, acked: outcome.acked },
          'system:terminal',
        );
    }
  }
}
