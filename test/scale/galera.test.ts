/**
 * The service on a 3-node MariaDB Galera cluster (scripts/galera.sh; `npm run test:galera`), one
 * service instance per node. Galera takes row locks only on the node that runs the statement and
 * turns a conflicting write from another node into a certification failure at commit (1213): the
 * whole-transaction retry in db.tx and the conditional UPDATEs must keep every count exact.
 * Skipped unless POS_GALERA=1 and GALERA_URLS names the three nodes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createApp, App } from '../../src/app';
import { configFromEnv } from '../../src/config';
import { Db, exec, rows, runAllAndCommit } from '../../src/db/db';
import { lockOpenShifts } from '../../src/shifts/shift-lock';
import { ManualClock } from '../../src/shared/clock';
import { silentLogger } from '../../src/shared/logger';
import { checkInvariants } from '../../src/inventory/check';
import { client } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';
import { simulatedAcquirer } from '../support/acquirer';

const urls = (process.env.GALERA_URLS ?? '').split(/\s+/).filter(Boolean);
const on = process.env.POS_GALERA === '1' && urls.length === 3;

async function certStats(db: Db): Promise<{ certFailures: number; bfAborts: number }> {
  const r = await db.read((m) =>
    rows<{ Variable_name: string; Value: string }>(
      m,
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')",
    ),
  );
  const v = (n: string) => Number(r.find((x) => x.Variable_name === n)?.Value ?? 0);
  return { certFailures: v('wsrep_local_cert_failures'), bfAborts: v('wsrep_local_bf_aborts') };
}

(on ? describe : describe.skip)('one service instance per Galera node', () => {
  const name = `pos_g_${randomBytes(4).toString('hex')}`;
  const clock = new ManualClock(new Date('2026-11-25T02:00:00Z'));
  const dbs: Db[] = [];
  const apps: App[] = [];
  const bases: string[] = [];
  const adminKey = `pos_${randomBytes(16).toString('hex')}`;
  let acq: Awaited<ReturnType<typeof simulatedAcquirer>>;

  const nodeUrl = (u: string) => {
    const x = new URL(u);
    x.pathname = `/${name}`;
    return x.toString();
  };

  beforeAll(async () => {
    const admin = await Db.fromUrl(urls[0], { poolSize: 1 }).open();
    await admin.ds.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`); // DDL replicates to every node (TOI)
    await admin.close();
    acq = await simulatedAcquirer(clock, 2000, 5);
    for (let i = 0; i < 3; i++) {
      const db = await Db.fromUrl(nodeUrl(urls[i]), { poolSize: 20 }).open({ migrate: i === 0 });
      dbs.push(db);
      const lane = new SilentTerminal('lane-1', acq.bank, clock);
      const config = {
        ...configFromEnv({}),
        databaseUrl: nodeUrl(urls[i]),
        adminKey,
        instanceId: `galera-node-${i + 1}`,
        reversalGraceSeconds: 60,
        // Small claims, so that three sweepers started together take turns at the backlog: with one claim of 200
        // the first node to commit could take (almost) all of it, and the test would not see the nodes contend.
        sweepBatchSize: 10,
      };
      const app = await createApp({
        config,
        db,
        clock,
        log: silentLogger,
        schedule: false,
        acquirer: acq.acquirer,
        terminals: new Map([['lane-1', lane]]),
      });
      apps.push(app);
      bases.push((await app.listen(0, '127.0.0.1')).url);
    }
  }, 120_000);

  afterAll(async () => {
    for (const a of apps) await a.close();
    for (const d of dbs) await d.close();
    await acq?.sim.close();
    if (urls.length) {
      const admin = await Db.fromUrl(urls[0], { poolSize: 1 }).open();
      await admin.ds.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.close();
    }
  });

  it('200-way contention on 50 units spread over the three nodes: exactly 50', async () => {
    const admin = client(bases[0], adminKey);
    expect((await admin('PUT', '/v1/skus/HOT', { name: 'Hot', priceFen: 100 })).status).toBe(200);
    expect((await admin('POST', '/v1/stock/receipts', { lines: [{ sku: 'HOT', qty: 50 }] })).status).toBe(201);
    const key = (await admin('POST', '/v1/api-keys', { role: 'cashier' })).body.key as string;
    const cashiers = bases.map((b) => client(b, key));
    const before = await Promise.all(dbs.map(certStats));
    const t0 = Date.now();
    const rs = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        cashiers[i % 3]('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'HOT', qty: 1 }] }),
      ),
    );
    const ms = Date.now() - t0;
    const after = await Promise.all(dbs.map(certStats));
    const statuses = rs.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(50);
    expect(statuses.filter((s) => s === 409)).toHaveLength(150);
    for (const d of dbs)
      expect(
        (await d.read((m) => rows<{ reserved: unknown }>(m, "SELECT reserved FROM sku WHERE sku = 'HOT'")))[0].reserved,
      ).toBe('50');
    expect(await checkInvariants(dbs[0])).toEqual([]);
    const cert = after.map((a, i) => a.certFailures - before[i].certFailures);
    const bf = after.map((a, i) => a.bfAborts - before[i].bfAborts);
    console.log(
      `galera: 200 orders for 50 units over 3 nodes in ${ms} ms; certification failures per node ${cert.join('/')}, brute-force aborts ${bf.join('/')}`,
    );
  }, 60_000);

  it('200 seat holds for 50 seats spread over the three nodes: each seat held once, every 201 written', async () => {
    const admin = client(bases[0], adminKey);
    const seats = Array.from({ length: 50 }, (_, i) => ({
      id: `S${i + 1}`,
      section: 'A',
      row: '1',
      number: i + 1,
      priceFen: 1000,
    }));
    expect((await admin('POST', '/v1/events', { id: 'gala', name: 'Galera gala', seats })).status).toBe(201);
    const key = (await admin('POST', '/v1/api-keys', { role: 'cashier' })).body.key as string;
    const box = bases.map((b) => client(b, key));
    const rs = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        box[i % 3]('POST', '/v1/events/gala/holds', { seats: [`S${(i % 50) + 1}`], ttlSeconds: 900 }),
      ),
    );
    const granted = rs.filter((r) => r.status === 201);
    expect(granted).toHaveLength(50);
    expect(rs.filter((r) => r.status === 409)).toHaveLength(150);
    // Each 201 is an order that exists on every node (a batch told OK for a COMMIT certification threw away
    // would answer 201 for one that does not: see runAllAndCommit).
    for (const d of dbs) {
      const ids = await d.read((m) =>
        rows<{ id: string }>(m, "SELECT id FROM orders WHERE kind = 'seats' AND event_id = 'gala'"),
      );
      expect(ids.map((r) => r.id).sort()).toEqual(granted.map((r) => r.body.id as string).sort());
    }
    expect(await checkInvariants(dbs[0])).toEqual([]);
  }, 60_000);

  it('three sweepers, one per node, settle each unknown attempt exactly once', async () => {
    const N = 300;
    const [a] = apps;
    await a.inventory.upsertSku({ sku: 'CARD', name: 'card item', priceFen: 500 }, 'test');
    await a.inventory.receive([{ sku: 'CARD', qty: N }], 'rcpt-card', 'test');
    const truth = new Map<string, 'approved' | 'declined' | 'none'>();
    let n = 0;
    (a.terminals.get('lane-1') as SilentTerminal).plan = (rf) => {
      const did = (['approved', 'declined', 'none'] as const)[n++ % 3];
      truth.set(rf, did);
      return did;
    };
    for (let i = 0; i < N; i++) {
      const o = await a.orders.create({ lane: 'lane-1', lines: [{ sku: 'CARD', qty: 1 }] }, 'test');
      await a.payments.tender(o.id, { method: 'card', amountFen: 500, lane: 'lane-1' }, 'test');
    }
    for (let i = 0; i < 200 && (await a.payments.list('pending')).length > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await a.payments.list('unknown')).length).toBe(N);

    const before = await Promise.all(dbs.map(certStats));
    const resolvedBy = [0, 0, 0];
    const workedBy = [0, 0, 0];
    // The bank approved a third and declined a third; a third it never saw: those are reversed at the
    // acquirer, which refuses a reversal of what it never saw, so they stay unknown for a person (suspense).
    for (let round = 0; round < 8 && (await a.payments.list('unknown')).length > N / 3; round++) {
      clock.advance(61_000);
      const reports = await Promise.all(apps.map((app) => app.sweeper.sweep()));
      reports.forEach((r, i) => {
        resolvedBy[i] += r.approved + r.failed;
        workedBy[i] += r.queried;
      });
    }
    clock.advance(61_000);
    await Promise.all(apps.map((app) => app.sweeper.sweep())); // one more round: nothing may be worked twice
    const after = await Promise.all(dbs.map(certStats));
    const final = await a.db.read((m) =>
      rows<{ rf: string; status: string }>(m, "SELECT rf, status FROM payment WHERE method = 'card'"),
    );
    expect(final).toHaveLength(N);
    for (const p of final) {
      const did = truth.get(p.rf);
      expect([p.rf, p.status]).toEqual([
        p.rf,
        did === 'approved' ? 'approved' : did === 'declined' ? 'declined' : 'unknown',
      ]);
    }
    // Exactly one settling audit row per settled attempt, one sale movement per approval.
    const settles = await a.db.read((m) =>
      rows<{ entity_id: string; n: unknown }>(
        m,
        "SELECT entity_id, COUNT(*) AS n FROM audit_log WHERE entity = 'payment' AND action IN ('approve', 'declined', 'reversed') GROUP BY entity_id",
      ),
    );
    expect(settles).toHaveLength((2 * N) / 3);
    expect(settles.every((s) => Number(s.n) === 1)).toBe(true);
    const sales = await a.db.read((m) =>
      rows<{ n: unknown }>(m, "SELECT COUNT(*) AS n FROM stock_movement WHERE kind = 'sale' AND sku = 'CARD'"),
    );
    expect(Number(sales[0].n)).toBe(N / 3);
    // One reversal request per never-seen attempt, none twice (two nodes working one attempt would send two).
    const reversed = acq.sim.reversedOrderIds.filter((id) => truth.has(id));
    expect(new Set(reversed).size).toBe(reversed.length);
    expect(new Set(reversed)).toEqual(new Set([...truth].filter(([, did]) => did === 'none').map(([rf]) => rf)));
    expect(resolvedBy.reduce((x, y) => x + y, 0)).toBe((2 * N) / 3);
    expect(workedBy.filter((k) => k > 0).length).toBeGreaterThanOrEqual(2); // the work was shared
    expect(await checkInvariants(dbs[0])).toEqual([]);
    console.log(
      `galera: ${N} unknown attempts worked by node 1/2/3: ${workedBy.join('/')}; ${(2 * N) / 3} settled: ${resolvedBy.join('/')}, ${reversed.length} reversal requests for ${N / 3} never-seen; certification failures ${after.map((x, i) => x.certFailures - before[i].certFailures).join('/')}`,
    );
  }, 120_000);
  /**
   * A lane's shift close and a sale on that lane, on two nodes. The close is the service's (shifts.service):
   * the row locked by its open_lane index, then closed; the sale is what every money transaction runs first
   * (lockOpenShifts). Whichever of the two commits second fails certification (1213), so it cannot have read
   * past the other: a close that had built its Z without the sale, or a sale stamped inside a closed window.
   * Before, the sale only share-locked the row, on its own node, and both committed.
   */
  it('a shift close on one node and a sale of its lane on another cannot both commit', async () => {
    const errno = (err: unknown) =>
      (err as { driverError?: { errno?: number }; errno?: number }).driverError?.errno ??
      (err as { errno?: number }).errno;
    const openShift = async (lane: string) => {
      const id = randomUUID();
      await dbs[0].tx((m) =>
        exec(
          m,
          "INSERT INTO shift (id, lane, open_lane, status, float_fen, opened_by, opened_at) VALUES (?, ?, ?, 'open', 0, 'test', ?)",
          [id, lane, lane, Date.now()],
        ),
      );
      // Applied on the other nodes a moment after the commit.
      for (let i = 0; i < 100; i++) {
        const seen = await Promise.all(
          dbs.map((d) => d.read((m) => rows(m, 'SELECT id FROM shift WHERE open_lane = ?', [lane]))),
        );
        if (seen.every((r) => r.length === 1)) return id;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the shift row did not reach every node');
    };
    const closeOn = async (db: Db, id: string, lane: string) => {
      const qr = db.ds.createQueryRunner();
      await qr.connect();
      await qr.startTransaction();
      await qr.query('SELECT id FROM shift WHERE open_lane = ? FOR UPDATE', [lane]);
      await qr.query("UPDATE shift SET status = 'closed', open_lane = NULL, closed_at = ? WHERE id = ?", [
        Date.now(),
        id,
      ]);
      return qr;
    };

    // The close holds its row on node 1 while the sale commits on node 2: the close's commit then fails.
    const id1 = await openShift('lane-g1');
    const close = await closeOn(dbs[0], id1, 'lane-g1');
    const saw = await dbs[1].tx((m) => lockOpenShifts(m, dbs[1], ['lane-g1']));
    expect(saw.has('lane-g1')).toBe(true);
    const closeFailed = await close.commitTransaction().then(
      () => 0,
      (err) => errno(err),
    );
    await close.release();
    expect(closeFailed).toBe(1213); // before: 0, the close committed as if the sale had not happened
    expect((await dbs[0].read((m) => rows(m, 'SELECT status FROM shift WHERE id = ?', [id1])))[0].status).toBe('open');

    // The sale holds its row on node 2 while the close commits on node 1: the sale's commit then fails, and
    // run again (db.tx) it finds the lane with no open shift.
    const id2 = await openShift('lane-g2');
    const sale = dbs[1].ds.createQueryRunner();
    await sale.connect();
    await sale.startTransaction();
    await lockOpenShifts(sale.manager, dbs[1], ['lane-g2']);
    await (await closeOn(dbs[0], id2, 'lane-g2')).commitTransaction();
    const saleFailed = await sale.commitTransaction().then(
      () => 0,
      (err) => errno(err),
    );
    await sale.release();
    expect(saleFailed).toBe(1213);
    for (let i = 0; i < 100 && (await dbs[1].tx((m) => lockOpenShifts(m, dbs[1], ['lane-g2']))).size > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect((await dbs[1].tx((m) => lockOpenShifts(m, dbs[1], ['lane-g2']))).size).toBe(0);
  }, 60_000);
  /**
   * On Galera a COMMIT at the end of a multi-statement packet can answer OK for a transaction that
   * certification threw away (`node dist/bench/galera-commit.js`), so runAllAndCommit sends none there:
   * db.tx commits on its own and hears the 1213. Before, an order batch or a seat-hold batch could be
   * answered 201 for rows that were never written (200 orders for 50 units gave 52 201s in 2 runs of 8).
   */
  it('runAllAndCommit leaves the COMMIT to db.tx on a Galera node', async () => {
    let openAfter = false;
    await dbs[1].tx(async (m) => {
      await runAllAndCommit(m, [{ sql: 'SELECT 1 AS one', params: [] }]);
      openAfter = m.queryRunner!.isTransactionActive;
    });
    expect(dbs[1].galera).toBe(true);
    expect(openAfter).toBe(true);
  });
});
