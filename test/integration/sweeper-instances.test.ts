/**
 * Three service instances (three DataSources, three sweepers) on one MariaDB working 300 unknown
 * attempts at once: FOR UPDATE SKIP LOCKED plus a claim lease means each attempt is resolved by
 * exactly one of them, and the stock ledger stays exact.
 */
import { randomBytes } from 'node:crypto';
import { createApp, App } from '../../src/app';
import { configFromEnv } from '../../src/config';
import { Db, rows } from '../../src/db/db';
import { ManualClock } from '../../src/shared/clock';
import { silentLogger } from '../../src/shared/logger';
import { checkInvariants } from '../../src/inventory/check';
import { freshDb, FreshDb, testDbKinds } from '../support/dbs';
import { SilentTerminal } from '../support/unknown-terminal';
import { simulatedAcquirer } from '../support/acquirer';

const onMysql = testDbKinds().some((k) => k.name === 'mysql');
(onMysql ? describe : describe.skip)('three sweepers on MariaDB', () => {
  const N = 300;
  let fdb: FreshDb;
  let acq: Awaited<ReturnType<typeof simulatedAcquirer>>;
  const apps: App[] = [];
  const dbs: Db[] = [];
  const clock = new ManualClock(new Date('2026-11-25T02:00:00Z'));

  beforeAll(async () => {
    fdb = await freshDb('mysql', { poolSize: 20 });
    acq = await simulatedAcquirer(clock, 2000, 15); // a real acquirer takes time to answer
    for (let i = 0; i < 3; i++) {
      const db = i === 0 ? fdb.db : await Db.fromUrl(fdb.url, { poolSize: 20 }).open();
      dbs.push(db);
      const lane = new SilentTerminal('lane-1', acq.bank, clock, (_rf, amountFen) => (['approved', 'declined', 'none'] as const)[amountFen % 3]);
      const config = { ...configFromEnv({}), databaseUrl: fdb.url, adminKey: `pos_${randomBytes(16).toString('hex')}`, instanceId: `instance-${i}`, reversalGraceSeconds: 60 };
      apps.push(await createApp({ config, db, clock, log: silentLogger, schedule: false, acquirer: acq.acquirer, terminals: new Map([['lane-1', lane]]) }));
    }
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    for (const d of dbs.slice(1)) await d.close();
    await fdb?.drop();
    await acq?.sim.close();
  });

  it('resolves each of 300 unknown attempts exactly once', async () => {
    const [a] = apps;
    await a.inventory.upsertSku({ sku: 'MULTI', name: 'multi', priceFen: 500 }, 'test');
    await a.inventory.receive([{ sku: 'MULTI', qty: N }], 'rcpt-multi', 'test');
    const truth = new Map<string, 'approved' | 'declined' | 'none'>();
    let n = 0;
    (a.terminals.get('lane-1') as SilentTerminal).plan = (rf) => {
      const did = (['approved', 'declined', 'none'] as const)[n++ % 3];
      truth.set(rf, did);
      return did;
    };
    const paymentIds: string[] = [];
    for (let i = 0; i < N; i++) {
      const o = await a.orders.create({ lane: 'lane-1', lines: [{ sku: 'MULTI', qty: 1 }] }, 'test');
      const p = await a.payments.tender(o.id, { method: 'card', amountFen: 500, lane: 'lane-1' }, 'test');
      paymentIds.push(p.id);
    }
    for (let i = 0; i < 100 && (await a.payments.list('pending')).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await a.payments.list('unknown')).length).toBe(N);

    // Past the reversal grace period the others settle from the query; 'none' attempts (the bank never saw them) get one
    // reversal each, which the acquirer refuses (34: no such transaction), so they stay unknown, their stock held, for the T+1 file.
    const resolvedBy = [0, 0, 0];
    for (let round = 0; round < 6 && (await a.payments.list('unknown')).length > N / 3; round++) {
      clock.advance(61_000);
      const reports = await Promise.all(apps.map((app) => app.sweeper.sweep()));
      reports.forEach((r, i) => { resolvedBy[i] += r.approved + r.failed; });
    }
    const final = await a.db.read((m) => rows<{ id: string; rf: string; status: string }>(m, 'SELECT id, rf, status FROM payment'));
    expect(final).toHaveLength(N);
    for (const p of final) {
      const did = truth.get(p.rf);
      expect([p.rf, p.status]).toEqual([p.rf, did === 'approved' ? 'approved' : did === 'declined' ? 'declined' : 'unknown']);
    }
    // Exactly one settling audit row per settled attempt, one sale movement per approval, one reversal per never-charged attempt.
    const settles = await a.db.read((m) => rows<{ entity_id: string; n: unknown }>(m,
      "SELECT entity_id, COUNT(*) AS n FROM audit_log WHERE entity = 'payment' AND action IN ('approve', 'declined', 'reversed') GROUP BY entity_id"));
    expect(settles).toHaveLength((2 * N) / 3);
    expect(settles.every((s) => Number(s.n) === 1)).toBe(true);
    const sales = await a.db.read((m) => rows<{ n: unknown }>(m, "SELECT COUNT(*) AS n FROM stock_movement WHERE kind = 'sale'"));
    expect(Number(sales[0].n)).toBe(N / 3);
    const reversed = acq.sim.reversedOrderIds.filter((id) => truth.has(id));
    expect(new Set(reversed).size).toBe(reversed.length);
    expect(reversed.length).toBe(N / 3);
    expect(await checkInvariants(a.db)).toEqual([]);
    // The work was shared, and the instances' own counts add up to exactly one resolution per attempt.
    expect(resolvedBy.reduce((x, y) => x + y, 0)).toBe((2 * N) / 3);
    expect(resolvedBy.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  }, 240_000); // 300 attempts through an acquirer that answers slowly on purpose; generous for a loaded CI machine
});
