import { SimBankPort } from '../../src/acquirer/sim-bank';
import { chinaTimestamp, Clock } from '../../src/shared/clock';
import { QueryOutcome, SaleOutcome, SaleRequest, SimpleOutcome, Terminal } from '../../src/terminal/terminal';

/**
 * A lane whose terminal took the card and then went silent, and is unreachable since: every sale
 * ends `unknown` after the bank did what `plan(rf, amount)` says, and the sweeper must ask the
 * acquirer. Used to set up many unknown attempts quickly; the terminal path itself is covered by
 * the simulator suites.
 */
export class SilentTerminal implements Terminal {
  constructor(
    readonly lane: string,
    private readonly bank: SimBankPort,
    private readonly clock: Clock,
    public plan: (rf: string, amountFen: number) => 'approved' | 'declined' | 'none' = () => 'approved',
  ) {}
  isIdle(): boolean {
    return true;
  }
  isConnected(): boolean {
    return false;
  }
  async sale(req: SaleRequest): Promise<SaleOutcome> {
    const did = this.plan(req.rf, req.amountFen);
    if (did !== 'none') {
      await this.bank.record({
        orderId: req.rf,
        amountFen: req.amountFen,
        status: did,
        txnTime: chinaTimestamp(this.clock.now()),
        respCode: did === 'approved' ? '00' : '51',
      });
    }
    return { kind: 'unknown', reason: 'no final response (line went silent)', acked: true };
  }
  async voidSale(): Promise<SaleOutcome> {
    return { kind: 'not_executed', reason: 'unreachable' };
  }
  async refund(): Promise<SaleOutcome> {
    return { kind: 'not_executed', reason: 'unreachable' };
  }
  async query(): Promise<QueryOutcome> {
    return { kind: 'failed', reason: 'unreachable' };
  }
  async signIn(): Promise<SimpleOutcome> {
    return { ok: false, reason: 'unreachable' };
  }
  async close(): Promise<void> {}
}
