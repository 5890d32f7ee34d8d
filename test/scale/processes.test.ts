import http from 'node:http';
import { checkInvariants } from '../../src/inventory/check';
import { freshDb, FreshDb, testDbKinds } from '../support/dbs';
import { client } from '../support/app';
import { startService, ServiceProcess } from './cluster';

const onMysql = testDbKinds().some((k) => k.name === 'mysql');

/** Several processes on one database: the guard is the database, not any one process's memory. */
(onMysql ? describe : describe.skip)('pos serve --workers 3 on one MariaDB', () => {
  let fdb: FreshDb;
  let svc: ServiceProcess;

  beforeAll(async () => {
    fdb = await freshDb('mysql', { poolSize: 2 });
    svc = await startService(fdb.url, { workers: 3 });
  }, 120_000);
  afterAll(async () => {
    await svc?.stop();
    await fdb?.drop();
  });

  it('runs three workers behind one port', () => {
    expect(svc.workerPids()).toHaveLength(3);
  });

  it('200-way contention on 50 units across the workers: exactly 50 reserved, then sold once each', async () => {
    const admin = client(svc.url, svc.adminKey);
    expect((await admin('PUT', '/v1/skus/HOT', { name: 'Hot', priceFen: 100 })).status).toBe(200);
    expect((await admin('POST', '/v1/stock/receipts', { lines: [{ sku: 'HOT', qty: 50 }] })).status).toBe(201);
    const cashier = client(svc.url, (await admin('POST', '/v1/api-keys', { role: 'cashier' })).body.key);

    // 200 requests at once open many connections; the cluster primary hands them to the workers round-robin.
    const rs = await Promise.all(
      Array.from({ length: 200 }, () =>
        cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'HOT', qty: 1 }] }),
      ),
    );
    expect(rs.filter((r) => r.status === 201)).toHaveLength(50);
    expect(rs.filter((r) => r.status === 409)).toHaveLength(150);
    expect((await admin('GET', '/v1/stock/HOT')).body).toEqual({ sku: 'HOT', onHand: 50, reserved: 50, available: 0 });

    const won = rs.filter((r) => r.status === 201).map((r) => r.body.id as string);
    const pays = await Promise.all(
      won.flatMap((id) =>
        [1, 2].map(() =>
          cashier('POST', `/v1/orders/${id}/payments`, { method: 'cash', amountFen: 100, lane: 'lane-1' }),
        ),
      ),
    );
    expect(pays.filter((p) => p.status === 201)).toHaveLength(50);
    expect(pays.filter((p) => p.status === 409 && p.body.error.code === 'order_not_payable')).toHaveLength(50);
    expect((await admin('GET', '/v1/stock/HOT')).body).toEqual({ sku: 'HOT', onHand: 0, reserved: 0, available: 0 });
    expect(await checkInvariants(fdb.db)).toEqual([]);
  }, 60_000);
});

/** One scrape of /metrics under `--workers 2` shows both workers' counts, whichever worker takes it (issue 15). */
(onMysql ? describe : describe.skip)('pos serve --workers 2: /metrics for the whole cluster', () => {
  let fdb: FreshDb;
  let svc: ServiceProcess;

  beforeAll(async () => {
    fdb = await freshDb('mysql', { poolSize: 2 });
    svc = await startService(fdb.url, { workers: 2 });
  }, 120_000);
  afterAll(async () => {
    await svc?.stop();
    await fdb?.drop();
  });

  /** A request on a connection of its own: the cluster primary hands each new connection to the next worker. */
  const get = (path: string) =>
    new Promise<string>((resolve, reject) => {
      http
        .get(`${svc.url}${path}`, { agent: false }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });

  it('counts the requests both workers served, in one scrape, from either worker', async () => {
    const pids = svc.workerPids();
    expect(pids).toHaveLength(2);
    for (let i = 0; i < 40; i++) await get('/healthz');
    for (let scrape = 0; scrape < 4; scrape++) {
      const text = await get('/metrics');
      const seen = [...text.matchAll(/^pos_process_info\{pid="(\d+)"\} 1$/gm)].map((m) => Number(m[1])).sort();
      expect(seen).toEqual([...pids].sort());
      const healthz = /^pos_http_request_seconds_count\{[^}]*route="\/healthz"[^}]*\} (\d+)$/m.exec(text);
      expect(Number(healthz?.[1])).toBe(40);
    }
  }, 60_000);
});
