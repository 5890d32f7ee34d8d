/**
 * One lane, one driver: two service instances configured for the same lane share one database. The
 * lease holder drives the terminal; the other waits, refuses card tenders there, and never marks the
 * holder's in-flight payment unknown. When the holder dies (its lease runs out) any instance finds
 * what it left pending and calls it unknown, and the waiting instance takes the lane over.
 */
import { createApp, App } from '../../src/app';
import { configFromEnv } from '../../src/config';
import { ManualClock } from '../../src/shared/clock';
import { silentLogger } from '../../src/shared/logger';
import { SaleOutcome, SaleRequest, Terminal } from '../../src/terminal/terminal';
import { testDbKinds } from '../support/dbs';
import { startTestApp, TestApp } from '../support/app';

/** Takes the request and never answers (the holder is mid-payment). */
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

describe.each(testDbKinds())('lane lease on $name', ({ name }) => {
  let t: TestApp;
  let b: App | null = null;
  const clock = new ManualClock(new Date('2026-11-25T02:00:00Z'));

  beforeAll(async () => {
    t = await startTestApp(name, {
      clock,
      terminals: new Map([['lane-1', new HangingTerminal('lane-1')]]),
      config: { instanceId: 'instance-a' },
    });
  });
  afterAll(async () => {
    await b?.close();
    await t?.stop();
  });

  it("states nobody owns: a second instance for the same lane waits, refuses tenders there and never marks the other's in-flight payment unknown; it takes over once the lease runs out", async () => {
    await t.api('PUT', '/v1/skus/L1', { name: 'l', priceFen: 100 });
    await t.api('POST', '/v1/stock/receipts', { lines: [{ sku: 'L1', qty: 5 }] });
    const o = (await t.api('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'L1', qty: 1 }] })).body;
    const p = (await t.api('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen: 100, lane: 'lane-1' }))
      .body;
    expect(p.status).toBe('pending');

    const hangingB = new HangingTerminal('lane-1');
    b = await createApp({
      config: { ...configFromEnv({}), databaseUrl: t.fdb.url, instanceId: 'instance-b' },
      db: t.fdb.db,
      clock,
      log: silentLogger,
      schedule: false,
      terminals: new Map([['lane-1', hangingB]]),
    });
    expect((await b.payments.view(p.id)).status).toBe('pending');
    expect(b.leases.holds('lane-1')).toBe(false);
    const o2 = await b.orders.create({ lane: 'lane-1', lines: [{ sku: 'L1', qty: 1 }] }, 'test');
    await expect(
      b.payments.tender(o2.id, { method: 'card', amountFen: 100, lane: 'lane-1' }, 'test'),
    ).rejects.toMatchObject({ status: 409, code: 'lane_not_driven' });
    clock.advance(20_000);
    await t.app.sweeper.sweep(); // the holder renews
    clock.advance(20_000);
    await b.sweeper.sweep();
    expect((await b.payments.view(p.id)).status).toBe('pending');
    expect(b.leases.holds('lane-1')).toBe(false);

    // The holder dies without a word: nobody renews its lease.
    await t.app.leases.stop(false);
    clock.advance(31_000);
    await b.sweeper.sweep();
    const after = await b.payments.view(p.id);
    expect(after.status).toBe('unknown');
    expect(b.leases.holds('lane-1')).toBe(true);
    const p2 = await b.payments.tender(o2.id, { method: 'card', amountFen: 100, lane: 'lane-1' }, 'test');
    expect(p2.status).toBe('pending');
    expect(hangingB.seen.map((s) => s.rf)).toEqual([p2.rf]);
    expect((await t.api('GET', '/v1/stock/L1')).body).toMatchObject({ onHand: 5, reserved: 2 });
    expect(await t.check()).toEqual([]);
  });

  it("any instance's sweep calls a pending payment unknown when no live instance drives its lane", async () => {
    const o = (await t.api('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'L1', qty: 1 }] })).body;
    const p = await b!.payments.tender(o.id, { method: 'card', amountFen: 100, lane: 'lane-1' }, 'test');
    await b!.leases.stop(false);
    clock.advance(31_000);
    // An instance with no terminals at all: it drives nothing, yet its sweep finds the pending attempt nobody owns.
    const c = await createApp({
      config: { ...configFromEnv({}), databaseUrl: t.fdb.url, instanceId: 'instance-c' },
      db: t.fdb.db,
      clock,
      log: silentLogger,
      schedule: false,
      terminals: new Map(),
    });
    try {
      const r = await c.sweeper.sweep();
      expect(r.orphaned).toBeGreaterThanOrEqual(1); // with instance-b's own pending attempt from the first test
      expect(await c.payments.view(p.id)).toMatchObject({ status: 'unknown', reason: 'lane_not_driven' });
      expect(await t.check()).toEqual([]);
    } finally {
      await c.close();
    }
  });
});
