/**
 * The sweeper against the acquirer simulator over real HTTP: stock is released only on a verified
 * failure or a confirmed reversal; every fault keeps it held.
 */
import { simulatedAcquirer } from '../support/acquirer';
import { ManualClock, chinaTimestamp } from '../../src/shared/clock';
import { exec } from '../../src/db/db';
import { TestDbKind, testDbKinds } from '../support/dbs';
import type { Config } from '../../src/config';
import { Api, startTestApp, TestApp } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';

// 10:00 China time on 2026-11-25
const MORNING = new Date('2026-11-25T02:00:00Z');

/** The service on `name` with a silent terminal on lane-1 and the acquirer simulator, on a manual clock at MORNING. */
async function startRig(name: TestDbKind['name'], config: Partial<Config>) {
  const clock = new ManualClock(MORNING);
  const acq = await simulatedAcquirer(clock);
  const lane = new SilentTerminal('lane-1', acq.bank, clock);
  const t = await startTestApp(name, { clock, acquirer: acq.acquirer, terminals: new Map([['lane-1', lane]]), config });
  return { t, clock, acq, lane };
}

let seq = 0;
/** A card payment whose outcome the (silent) terminal never told: unknown, its SKU's one unit held. */
async function unknownAttemptOn(
  r: { name: string; clock: ManualClock; lane: SilentTerminal; cashier: Api; office: Api },
  did: 'approved' | 'declined' | 'none',
  at: 'morning' | 'now' = 'morning',
): Promise<{ orderId: string; paymentId: string; rf: string; sku: string }> {
  if (at === 'morning') r.clock.set(MORNING);
  const sku = `SW-${r.name}-${++seq}`;
  await r.office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen: 600 });
  await r.office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 4 }] });
  const o = (await r.cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })).body;
  r.lane.plan = () => did;
  const pay = await r.cashier('POST', `/v1/orders/${o.id}/payments`, {
    method: 'card',
    amountFen: 600,
    lane: 'lane-1',
  });
  const p = (await r.cashier('GET', `/v1/payments/${pay.body.id}?wait=5`)).body;
  expect(p.status).toBe('unknown');
  return { orderId: o.id, paymentId: p.id, rf: p.rf, sku };
}

describe.each(testDbKinds())('sweeper on $name', ({ name }) => {
  let t: TestApp;
  let clock: ManualClock;
  let acq: Awaited<ReturnType<typeof simulatedAcquirer>>;
  let lane: SilentTerminal;
  let cashier: Api;
  let office: Api;

  beforeAll(async () => {
    ({ t, clock, acq, lane } = await startRig(name, {
      reversalGraceSeconds: 60,
      suspenseAfterSeconds: 86400,
      orderHoldSeconds: 1800,
    }));
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
    await acq?.sim.close();
  });
  afterEach(async () => {
    acq.sim.clearFaults();
    // The tests share one clock and go back to the same morning: a minute of quiet a 37 left behind would be
    // that morning again for the next test (in real time a window never comes round twice).
    await t.app.db.tx((m) =>
      exec(m, "UPDATE acquirer_quiet SET quiet_from = 0, quiet_until = 0 WHERE id = 'acquirer'"),
    );
    expect(await t.check()).toEqual([]);
  });

  const unknownAttempt = (did: 'approved' | 'declined' | 'none', at: 'morning' | 'now' = 'morning') =>
    unknownAttemptOn({ name, clock, lane, cashier, office }, did, at);
  const payment = async (id: string) => (await cashier('GET', `/v1/payments/${id}`)).body;
  const stock = async (sku: string) => (await cashier('GET', `/v1/stock/${sku}`)).body;
  async function sweepAfter(ms: number) {
    clock.advance(ms);
    const r = await t.api('POST', '/v1/sweeps');
    expect(r.status).toBe(200);
    return r.body;
  }

  it('approved at the acquirer → sold', async () => {
    const a = await unknownAttempt('approved');
    const r = await sweepAfter(1000);
    expect(r.approved).toBeGreaterThanOrEqual(1);
    expect((await payment(a.paymentId)).status).toBe('approved');
    expect(await stock(a.sku)).toMatchObject({ onHand: 3, reserved: 0 });
  });

  it('declined at the acquirer → a confirmed failure; the order no longer blocks and expires, releasing its stock', async () => {
    const a = await unknownAttempt('declined');
    await sweepAfter(1000);
    expect((await payment(a.paymentId)).status).toBe('declined');
    await sweepAfter(1800 * 1000);
    expect((await cashier('GET', `/v1/orders/${a.orderId}`)).body.status).toBe('expired');
    expect(await stock(a.sku)).toMatchObject({ onHand: 4, reserved: 0 });
  });

  it('34 for a while, then approved → sold', async () => {
    const a = await unknownAttempt('approved');
    acq.sim.setFault(a.rf, '34', 3);
    for (const wait of [1000, 2000, 4000]) {
      await sweepAfter(wait);
      expect((await payment(a.paymentId)).status).toBe('unknown');
    }
    expect(await stock(a.sku)).toMatchObject({ reserved: 1 });
    await sweepAfter(8000);
    expect((await payment(a.paymentId)).status).toBe('approved');
  });

  it.each([['500'], ['timeout'], ['badsig'], ['foreign'], ['03'], ['04'], ['05'], ['34']])(
    'fault %s keeps the stock held, however long it lasts (until the deadline: suspense)',
    async (fault) => {
      const a = await unknownAttempt('declined');
      acq.sim.setFault(a.rf, fault as '500', Infinity, 'both');
      for (const wait of [1000, 2000, 4000, 8000, 16_000, 32_000, 120_000, 3600_000]) {
        await sweepAfter(wait);
        expect((await payment(a.paymentId)).status).toBe('unknown');
        expect(await stock(a.sku)).toMatchObject({ onHand: 4, reserved: 1 });
      }
      expect((await cashier('POST', `/v1/orders/${a.orderId}/cancel`)).status).toBe(409);
      await sweepAfter(86400_000);
      expect((await payment(a.paymentId)).status).toBe('suspense');
      expect(await stock(a.sku)).toMatchObject({ onHand: 4, reserved: 1 });
      const listed = (await office('GET', '/v1/payments?status=suspense')).body as {
        id: string;
        heldSeconds: number;
      }[];
      expect(listed.find((p) => p.id === a.paymentId)?.heldSeconds).toBeGreaterThan(86400);
      // A person with the bank's statement settles it; audited.
      const resolved = await office('POST', `/v1/payments/${a.paymentId}/resolve`, {
        outcome: 'declined',
        note: 'bank statement shows no charge',
      });
      expect(resolved.status).toBe(200);
      expect(resolved.body.resolution).toMatchObject({ note: 'bank statement shows no charge' });
      expect((await cashier('POST', `/v1/orders/${a.orderId}/cancel`)).status).toBe(200);
      expect(await stock(a.sku)).toMatchObject({ onHand: 4, reserved: 0 });
    },
  );

  it('37 rate limit: backs off at least a minute', async () => {
    const a = await unknownAttempt('approved');
    acq.sim.setFault(a.rf, '37');
    await sweepAfter(1000);
    const p = await payment(a.paymentId);
    expect(p.status).toBe('unknown');
    expect(Date.parse(p.nextCheckAt) - clock.now().getTime()).toBeGreaterThanOrEqual(60_000);
    const before = acq.sim.counts.queries;
    await sweepAfter(30_000);
    expect(acq.sim.counts.queries).toBe(before);
    acq.sim.clearFaults();
    await sweepAfter(31_000); // the minute is up
    expect((await payment(a.paymentId)).status).toBe('approved');
  });

  it('after a 37 the acquirer is left alone for the minute: an attempt that comes due meanwhile waits for it', async () => {
    const limited = await unknownAttempt('approved');
    acq.sim.setFault(limited.rf, '37');
    await sweepAfter(1000);
    const other = await unknownAttempt('approved', 'now');
    const before = acq.sim.counts.queries;
    await sweepAfter(30_000);
    expect(acq.sim.counts.queries).toBe(before);
    expect((await payment(other.paymentId)).status).toBe('unknown');
    acq.sim.clearFaults();
    await sweepAfter(31_000); // the minute is up
    expect(acq.sim.counts.queries).toBeGreaterThan(before);
    expect((await payment(other.paymentId)).status).toBe('approved');
  });

  it("the refunds' checks leave the acquirer alone for its minute too, and a 37 to one of them starts it", async () => {
    // An approved card payment whose refund's outcome is unknown: its check asks the acquirer by the refund's RF.
    const a = await unknownAttempt('approved');
    await sweepAfter(1000);
    expect((await payment(a.paymentId)).status).toBe('approved');
    const refundRf = `${a.rf.slice(0, 29)}-RF`;
    await t.app.db.tx((m) =>
      exec(
        m,
        "UPDATE payment SET refund_state = 'unknown', refund_fen = 600, refund_rf = ?, refund_txn_time = ?, updated_at = 0 WHERE id = ?",
        [refundRf, chinaTimestamp(clock.now()), a.paymentId],
      ),
    );
    // A 37 to an attempt's check: the refund's check later in the same sweep asks nothing.
    const limited = await unknownAttempt('approved', 'now');
    acq.sim.setFault(limited.rf, '37');
    const before = acq.sim.counts.queries;
    await sweepAfter(1000);
    expect(acq.sim.counts.queries).toBe(before + 1); // the attempt's, not the refund's
    // After the minute the refund's check is answered 37: the attempts that come due within its minute wait.
    acq.sim.clearFaults();
    acq.sim.setFault(refundRf, '37');
    await sweepAfter(61_000);
    expect((await payment(limited.paymentId)).status).toBe('approved');
    const other = await unknownAttempt('approved', 'now');
    const quiet = acq.sim.counts.queries;
    await sweepAfter(30_000);
    expect(acq.sim.counts.queries).toBe(quiet);
    expect((await payment(other.paymentId)).status).toBe('unknown');
    acq.sim.clearFaults();
    await sweepAfter(31_000);
    expect((await payment(other.paymentId)).status).toBe('approved');
    // A person settles the refund nobody could tell about (the rig's acquirer never saw it).
    const done = await office('POST', `/v1/payments/${a.paymentId}/refund/resolve`, {
      outcome: 'done',
      note: 'refund confirmed by the acquirer by phone',
    });
    expect(done.status).toBe(200);
  });

  it('still unknown past the grace period on the same day → reversal; released only once it is confirmed', async () => {
    const a = await unknownAttempt('approved');
    acq.sim.setFault(a.rf, '34');
    const reversalsFor = () => acq.sim.reversedOrderIds.filter((id) => id === a.rf).length;
    await sweepAfter(1000);
    expect(reversalsFor()).toBe(0); // within the grace period
    await sweepAfter(61_000);
    expect(reversalsFor()).toBe(1);
    expect((await payment(a.paymentId)).status).toBe('reversed');
    expect((await acq.bank.get(a.rf))?.status).toBe('reversed');
    expect((await cashier('POST', `/v1/orders/${a.orderId}/cancel`)).status).toBe(200);
    expect(await stock(a.sku)).toMatchObject({ onHand: 4, reserved: 0 });
  });

  it('a reversal without an answer releases nothing', async () => {
    const a = await unknownAttempt('approved');
    acq.sim.setFault(a.rf, 'timeout', Infinity, 'both');
    await sweepAfter(61_000);
    expect((await payment(a.paymentId)).status).toBe('unknown');
    expect(await stock(a.sku)).toMatchObject({ reserved: 1, onHand: 4 });
  });

  it('after 23:00 China time no reversal is sent for a transaction of that day', async () => {
    clock.set(new Date('2026-11-25T14:50:00Z')); // 22:50 China
    const sku = `SW-${name}-late`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen: 600 });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 1 }] });
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })).body;
    lane.plan = () => 'approved';
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen: 600, lane: 'lane-1' });
    const p = (await cashier('GET', `/v1/payments/${r.body.id}?wait=5`)).body;
    acq.sim.setFault(p.rf, '34');
    clock.set(new Date('2026-11-25T15:05:00Z')); // 23:05 China, past the cut-off
    await t.api('POST', '/v1/sweeps');
    expect(acq.sim.reversedOrderIds).not.toContain(p.rf);
    const after = await payment(p.id);
    expect(after.status).toBe('unknown');
    expect(after.reason).toBe('past_reversal_cutoff');
    expect(await stock(sku)).toMatchObject({ reserved: 1 });
  });

  it('metrics show what is held', async () => {
    const res = await fetch(`${t.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/pos_payments_held\{status="unknown"\} \d+/);
    expect(text).toMatch(/pos_payments_held\{status="suspense"\} \d+/);
    expect(text).toMatch(/pos_sweeper_outcomes_total/);
    expect(text).toMatch(/pos_sweeper_query_seconds/);
  });
});

describe.each(testDbKinds())('sweeper, one attempt at a time, on $name', ({ name }) => {
  let t: TestApp;
  let clock: ManualClock;
  let acq: Awaited<ReturnType<typeof simulatedAcquirer>>;
  let lane: SilentTerminal;

  beforeAll(async () => {
    ({ t, clock, acq, lane } = await startRig(name, { reversalGraceSeconds: 60, sweepConcurrency: 1 }));
  });
  afterAll(async () => {
    await t?.stop();
    await acq?.sim.close();
  });

  it('a 37 stops the sweep: the rest of the backlog is not asked, and is given back due after the minute', async () => {
    const r = { name, clock, lane, cashier: await t.as('cashier'), office: await t.as('backoffice') };
    const limited = await unknownAttemptOn(r, 'approved');
    const rest = [await unknownAttemptOn(r, 'approved'), await unknownAttemptOn(r, 'declined')];
    acq.sim.setFault(limited.rf, '37');
    clock.advance(1000);
    const before = acq.sim.counts.queries;
    expect((await t.api('POST', '/v1/sweeps')).status).toBe(200);
    expect(acq.sim.counts.queries).toBe(before + 1); // the oldest, limited, only
    for (const a of rest) {
      const p = (await r.cashier('GET', `/v1/payments/${a.paymentId}`)).body;
      expect(p.status).toBe('unknown');
      expect(Date.parse(p.nextCheckAt) - clock.now().getTime()).toBeGreaterThanOrEqual(60_000);
    }
    // Given back, not left claimed: the first sweep after the minute settles them.
    acq.sim.clearFaults();
    clock.advance(61_000);
    expect((await t.api('POST', '/v1/sweeps')).status).toBe(200);
    const after = await Promise.all(
      rest.map(async (a) => (await r.cashier('GET', `/v1/payments/${a.paymentId}`)).body),
    );
    expect(after.map((p) => p.status)).toEqual(['approved', 'declined']);
    expect(await t.check()).toEqual([]);
  });
});
