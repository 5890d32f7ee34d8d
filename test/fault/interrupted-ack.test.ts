/**
 * Issue 10, defect 1 at the restart: the terminal ACKs a sale and the bank charges the card, and the
 * service dies before it has written "acked" down. After the restart the attempt is unknown — but is
 * it "never ACKed"? Nobody knows, so a Q0 answer `N` (a terminal whose journal is gone) must send the
 * sweeper to the acquirer, never settle the attempt as declined.
 */
import { createApp } from '../../src/app';
import { configFromEnv } from '../../src/config';
import { ManualClock, chinaTimestamp } from '../../src/shared/clock';
import { silentLogger } from '../../src/shared/logger';
import { QueryOutcome, SaleOutcome, SaleRequest, Terminal } from '../../src/terminal/terminal';
import { SimBankPort } from '../../src/acquirer/sim-bank';
import { testDbKinds } from '../support/dbs';
import { startTestApp } from '../support/app';
import { simulatedAcquirer } from '../support/acquirer';

/** Takes the request, the bank charges the card, and the process "dies" before the ACK is recorded. */
class ChargedThenDeadTerminal implements Terminal {
  constructor(
    readonly lane: string,
    private readonly bank: SimBankPort,
    private readonly clock: ManualClock,
  ) {}
  isIdle() {
    return true;
  }
  isConnected() {
    return true;
  }
  async sale(req: SaleRequest): Promise<SaleOutcome> {
    await this.bank.record({
      orderId: req.rf,
      amountFen: req.amountFen,
      status: 'approved',
      txnTime: chinaTimestamp(this.clock.now()),
      respCode: '00',
    });
    return new Promise(() => undefined);
  }
  voidSale(): Promise<SaleOutcome> {
    return new Promise(() => undefined);
  }
  refund(): Promise<SaleOutcome> {
    return new Promise(() => undefined);
  }
  async query(): Promise<QueryOutcome> {
    return { kind: 'failed', reason: 'gone' };
  }
  async signIn() {
    return { ok: false };
  }
  async close() {}
}

/** The lane's terminal after the restart, its journal lost: it never heard of any RF. */
class ForgetfulTerminal implements Terminal {
  constructor(readonly lane: string) {}
  isIdle() {
    return true;
  }
  isConnected() {
    return true;
  }
  sale(): Promise<SaleOutcome> {
    return new Promise(() => undefined);
  }
  voidSale(): Promise<SaleOutcome> {
    return new Promise(() => undefined);
  }
  refund(): Promise<SaleOutcome> {
    return new Promise(() => undefined);
  }
  async query(): Promise<QueryOutcome> {
    return { kind: 'status', status: 'N' };
  }
  async signIn() {
    return { ok: true, rc: '00' };
  }
  async close() {}
}

describe.each(testDbKinds())('interrupted before the ACK was recorded, on $name', ({ name }) => {
  it('line lost before the ACK becomes declined: after a restart, Q0 N never declines a card the bank charged (the ACK may have come)', async () => {
    const clock = new ManualClock(new Date());
    const acq = await simulatedAcquirer(clock, 2000);
    const t = await startTestApp(name, {
      clock,
      acquirer: acq.acquirer,
      terminals: new Map([['lane-1', new ChargedThenDeadTerminal('lane-1', acq.bank, clock)]]),
    });
    try {
      await t.api('PUT', '/v1/skus/IA1', { name: 'ia', priceFen: 300 });
      await t.api('POST', '/v1/stock/receipts', { lines: [{ sku: 'IA1', qty: 2 }] });
      const o = (await t.api('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'IA1', qty: 1 }] })).body;
      const p = (await t.api('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen: 300, lane: 'lane-1' }))
        .body;
      expect(p.status).toBe('pending');
      for (let i = 0; i < 100 && !(await acq.bank.get(p.rf)); i++) await new Promise((r) => setTimeout(r, 10));
      expect((await acq.bank.get(p.rf))?.status).toBe('approved');

      const again = await createApp({
        config: { ...configFromEnv({}), databaseUrl: t.fdb.url, reversalGraceSeconds: 3600 },
        db: t.fdb.db,
        clock,
        log: silentLogger,
        schedule: false,
        acquirer: acq.acquirer,
        terminals: new Map([['lane-1', new ForgetfulTerminal('lane-1')]]),
      });
      try {
        expect((await again.payments.view(p.id)).status).toBe('unknown');
        clock.advance(5000);
        await again.sweeper.sweep();
        const after = await again.payments.view(p.id);
        expect(after.status).toBe('approved');
        expect((await t.api('GET', '/v1/stock/IA1')).body).toMatchObject({ onHand: 1, reserved: 0 });
        expect(await t.check()).toEqual([]);
      } finally {
        await again.close();
      }
    } finally {
      await t.stop();
      await acq.sim.close();
    }
  }, 60_000);
});
