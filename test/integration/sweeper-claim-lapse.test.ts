/**
 * A batch is claimed at once but worked a few at a time. When the last attempts of a batch wait
 * longer than the claim lasts (a slow acquirer), another instance may take them over; the instance
 * that claimed them first must then leave them alone, or both query and reverse the same attempt.
 */
import { Acquirer, AcquirerQueryResult, AcquirerTxnRef } from '../../src/acquirer/acquirer';
import { rows } from '../../src/db/db';
import { ManualClock } from '../../src/shared/clock';
import { silentLogger } from '../../src/shared/logger';
import { Sweeper, SweeperOptions } from '../../src/sweeper/sweeper.service';
import { simulatedAcquirer } from '../support/acquirer';
import { testDbKinds } from '../support/dbs';
import { startTestApp, TestApp } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';

const MORNING = new Date('2026-11-25T02:00:00Z'); // 10:00 China time
const CLAIM_MS = 5 * 60_000;

describe.each(testDbKinds())('a claim that lapsed while its batch waited, on $name', ({ name }) => {
  let t: TestApp;
  let acq: Awaited<ReturnType<typeof simulatedAcquirer>>;
  const clock = new ManualClock(MORNING);
  let lane: SilentTerminal;

  beforeAll(async () => {
    acq = await simulatedAcquirer(clock, 30_000);
    lane = new SilentTerminal('lane-1', acq.bank, clock);
    t = await startTestApp(name, { clock, acquirer: acq.acquirer, terminals: new Map([['lane-1', lane]]) });
  });
  afterAll(async () => {
    await t?.stop();
    await acq?.sim.close();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  it('an attempt whose claim lapsed while it waited in the batch is worked (and reversed) by one instance, not two', async () => {
    const { app } = t;
    await app.inventory.upsertSku({ sku: 'LAPSE', name: 'lapse', priceFen: 700 }, 'test');
    await app.inventory.receive([{ sku: 'LAPSE', qty: 3 }], 'rcpt-lapse', 'test');
    // Approved at the bank, but the gateway answers every query 34: past the grace period each one is reversed.
    lane.plan = (rf) => {
      acq.sim.setFault(rf, '34', Infinity, 'query');
      return 'approved';
    };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const o = await app.orders.create({ lane: 'lane-1', lines: [{ sku: 'LAPSE', qty: 1 }] }, 'test');
      ids.push((await app.payments.tender(o.id, { method: 'card', amountFen: 700, lane: 'lane-1' }, 'test')).id);
    }
    for (let i = 0; i < 100 && (await app.payments.list('pending')).length > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect((await app.payments.list('unknown')).length).toBe(3);
    const rfs = new Set((await app.payments.list('unknown')).map((p) => p.rf!));

    // The first instance works its batch one at a time; each acquirer query takes 3 minutes (of the manual clock).
    // During its second query the other instance sweeps: the third attempt's claim (made 6 minutes ago) has lapsed.
    let queries = 0;
    let other: Sweeper | null = null;
    let otherSwept: Promise<unknown> | null = null;
    const slow: Acquirer = {
      query: async (ref: AcquirerTxnRef): Promise<AcquirerQueryResult> => {
        if (other && !otherSwept) {
          queries++;
          clock.advance(3 * 60_000);
          if (queries === 2) await (otherSwept = other.sweep());
        }
        return acq.acquirer.query(ref);
      },
      reverse: (ref) => acq.acquirer.reverse(ref),
    };
    const opts = (instanceId: string): SweeperOptions => ({
      instanceId,
      suspenseAfterMs: 86_400_000,
      reversalGraceMs: 60_000,
      claimMs: CLAIM_MS,
      batchSize: 200,
      concurrency: 1,
    });
    const make = (instanceId: string) =>
      new Sweeper(
        app.db,
        app.payments,
        app.orders,
        app.terminals,
        app.cards,
        slow,
        clock,
        silentLogger,
        app.metrics,
        opts(instanceId),
      );
    const first = make('instance-a');
    other = make('instance-b');

    clock.advance(61_000);
    const report = await first.sweep();
    const otherReport = await otherSwept!;

    // Each attempt was asked about and reversed once, by one instance: two by the first, the lapsed one by the other.
    const sent = acq.sim.reversedOrderIds.filter((id) => rfs.has(id));
    expect(sent.sort()).toEqual([...rfs].sort());
    expect(report).toMatchObject({ queried: 2, failed: 2 });
    expect(otherReport).toMatchObject({ queried: 1, failed: 1 });
    const final = await app.db.read((m) =>
      rows<{ id: string; status: string; claimed_by: string | null }>(m, 'SELECT id, status, claimed_by FROM payment'),
    );
    expect(final.map((p) => [p.id, p.status, p.claimed_by]).sort()).toEqual(
      ids.map((id) => [id, 'reversed', null]).sort(),
    );
    expect((await app.payments.list('disputed')).length).toBe(0);
  }, 60_000);
});
