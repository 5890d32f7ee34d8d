/**
 * Crash safety: the attempt and its RF are in the database before the first byte goes to the
 * terminal; after a restart an attempt left `pending` is `unknown` (never declined) and its stock
 * stays held. The card number is kept masked only.
 */
import { createApp } from '../../src/app';
import { configFromEnv } from '../../src/config';
import { rows } from '../../src/db/db';
import { silentLogger } from '../../src/shared/logger';
import { SaleOutcome, SaleRequest, Terminal } from '../../src/terminal/terminal';
import { testDbKinds } from '../support/dbs';
import { startTestApp } from '../support/app';

/** A terminal that takes the request and then the process "dies" before any answer. */
class HangingTerminal implements Terminal {
  seen: SaleRequest[] = [];
  constructor(readonly lane: string) {}
  isIdle() {
    return true;
  }
  isConnected() {
    return false;
  }
  sale(req: SaleRequest): Promise<SaleOutcome> {
    this.seen.push(req);
    return new Promise(() => undefined);
  }
  voidSale(): Promise<SaleOutcome> {
    return new Promise(() => undefined);
  }
  refund(): Promise<SaleOutcome> {
    return new Promise(() => undefined);
  }
  async query() {
    return { kind: 'failed' as const, reason: 'down' };
  }
  async signIn() {
    return { ok: false };
  }
  async close() {}
}

describe.each(testDbKinds())('restart on $name', ({ name }) => {
  it('a pending card attempt becomes unknown after a restart; the stock stays held', async () => {
    const hanging = new HangingTerminal('lane-1');
    const t = await startTestApp(name, { terminals: new Map([['lane-1', hanging]]) });
    try {
      await t.api('PUT', '/v1/skus/R1', { name: 'r', priceFen: 100 });
      await t.api('POST', '/v1/stock/receipts', { lines: [{ sku: 'R1', qty: 3 }] });
      const o = (await t.api('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'R1', qty: 2 }] })).body;
      const p = (await t.api('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen: 200, lane: 'lane-1' }))
        .body;
      expect(p.status).toBe('pending');
      // The request reached the terminal with the RF that was already stored.
      await new Promise((r) => setTimeout(r, 50));
      expect(hanging.seen).toEqual([{ rf: p.rf, amountFen: 200 }]);
      const stored = await t.app.db.read((m) =>
        rows<{ status: string; rf: string }>(m, 'SELECT status, rf FROM payment WHERE id = ?', [p.id]),
      );
      expect(stored[0]).toEqual({ status: 'pending', rf: p.rf });

      // "Restart": a new service on the same database with the same lanes.
      const again = await createApp({
        config: { ...configFromEnv({}), databaseUrl: t.fdb.url },
        db: t.fdb.db,
        log: silentLogger,
        schedule: false,
        terminals: new Map([['lane-1', new HangingTerminal('lane-1')]]),
      });
      const after = await again.payments.view(p.id);
      expect(after.status).toBe('unknown');
      expect((await t.api('GET', '/v1/stock/R1')).body).toMatchObject({ onHand: 3, reserved: 2 });
      expect((await t.api('POST', `/v1/orders/${o.id}/cancel`)).status).toBe(409);
      expect(await t.check()).toEqual([]);
      await again.close();
    } finally {
      await t.stop();
    }
  });

  it('never stores or logs more than a masked card number', async () => {
    const { maskedCard } = await import('../../src/terminal/serial-terminal');
    const { maskPan } = await import('../../src/shared/logger');
    expect(maskedCard('6228480402564890018')).toBe('622848*********0018');
    expect(maskedCard('622848******1234')).toBe('622848******1234');
    expect(maskPan('card 6228480402564890018 declined')).not.toMatch(/6228480402564890018/);
  });
});
