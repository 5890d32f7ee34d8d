import { Acquirer, AcquirerTxnRef } from '../../src/acquirer/acquirer';
import {
  QueryOutcome,
  RefundRequest,
  SaleHooks,
  SaleOutcome,
  SaleRequest,
  SimpleOutcome,
  Terminal,
  VoidRequest,
} from '../../src/terminal/terminal';

/**
 * A real terminal seen through a switch: `busy` makes it look occupied (as when another payment's
 * Q0 is on the wire), `saleThrows` makes the driver fail with an internal error.
 */
export class SwitchableTerminal implements Terminal {
  busy = false;
  saleThrows: Error | null = null;
  constructor(readonly inner: Terminal) {}
  get lane(): string {
    return this.inner.lane;
  }
  isIdle(): boolean {
    return !this.busy && this.inner.isIdle();
  }
  isConnected(): boolean {
    return this.inner.isConnected();
  }
  async sale(req: SaleRequest, hooks?: SaleHooks): Promise<SaleOutcome> {
    if (this.saleThrows) throw this.saleThrows;
    return this.inner.sale(req, hooks);
  }
  voidSale(req: VoidRequest, hooks?: SaleHooks): Promise<SaleOutcome> {
    return this.inner.voidSale(req, hooks);
  }
  refund(req: RefundRequest, hooks?: SaleHooks): Promise<SaleOutcome> {
    return this.inner.refund(req, hooks);
  }
  query(rf: string): Promise<QueryOutcome> {
    return this.inner.query(rf);
  }
  signIn(): Promise<SimpleOutcome> {
    return this.inner.signIn();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The acquirer, with a gate a test can hold shut after a query's answer came back (to interleave a person's action). */
export class GatedAcquirer implements Acquirer {
  private gate: Promise<void> | null = null;
  private answered: (() => void) | null = null;
  constructor(private readonly inner: Acquirer) {}

  /** The next query's answer is held until `release()`; resolves once that answer is in hand. */
  hold(): { answered: Promise<void>; release: () => void } {
    let release!: () => void;
    this.gate = new Promise((r) => {
      release = r;
    });
    const answered = new Promise<void>((r) => {
      this.answered = r;
    });
    return {
      answered,
      release: () => {
        this.gate = null;
        release();
      },
    };
  }

  async query(ref: AcquirerTxnRef) {
    const r = await this.inner.query(ref);
    const gate = this.gate;
    if (gate) {
      this.answered?.();
      await gate;
    }
    return r;
  }

  reverse(ref: AcquirerTxnRef & { amountFen: number }) {
    return this.inner.reverse(ref);
  }
}
