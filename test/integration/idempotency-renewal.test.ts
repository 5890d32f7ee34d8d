/**
 * A keyed request that works longer than IDEMPOTENCY_LEASE_MS (a return whose card legs wait at the
 * terminal, a slow database) renews its claim while it works, so a retry meanwhile is told the request
 * is in progress instead of taking the key over and doing the work a second time. A claim whose
 * request stopped renewing (it died) is still taken over once the lease has passed since its last renewal.
 */
import { createHash } from 'node:crypto';
import { exec } from '../../src/db/db';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';

const LEASE_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(testDbKinds())('idempotency claims renewed while the request works on $name', ({ name }) => {
  let t: TestApp;
  let office: Api;
  let till: Api;

  beforeAll(async () => {
    t = await startTestApp(name, { config: { cashLanes: ['lane-1'], idempotencyLeaseMs: LEASE_MS } });
    office = await t.as('backoffice');
    till = await t.as('cashier', 'lane-1');
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function stocked(qty: number): Promise<string> {
    const sku = `RENEW${name}${++seq}`;
    expect((await office('PUT', `/v1/skus/${sku}`, { name: `thing ${sku}`, priceFen: 100 })).status).toBe(200);
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty }] });
    return sku;
  }
  const reserved = async (sku: string) => (await office('GET', `/v1/stock/${sku}`)).body.reserved;

  it('a retry while the request outlives its lease is 409 in progress; the request answers, the retry then replays it', async () => {
    const sku = await stocked(5);
    const key = `slow-${sku}`;
    const orders = t.app.orders;
    const create = orders.create.bind(orders);
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    orders.create = async (...args: Parameters<typeof create>) => {
      if (++calls === 1) await gate; // the first run is slow: it outlives 2.5 leases
      return create(...args);
    };
    try {
      const body = { lane: 'lane-1', lines: [{ sku, qty: 1 }] };
      const first = till('POST', '/v1/orders', body, { 'idempotency-key': key });
      await sleep(2.5 * LEASE_MS);
      const retry = await till('POST', '/v1/orders', body, { 'idempotency-key': key });
      expect(retry.status).toBe(409);
      expect(retry.body.error.code).toBe('idempotency_key_in_progress');
      release();
      const answer = await first;
      expect(answer.status).toBe(201);
      const again = await till('POST', '/v1/orders', body, { 'idempotency-key': key });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replay')).toBe('true');
      expect(again.body.id).toBe(answer.body.id);
      expect(calls).toBe(1);
      expect(await reserved(sku)).toBe(1);
    } finally {
      orders.create = create;
      release();
    }
  });

  it('a claim renewed within the lease stays its request’s; one whose last renewal is older is taken over', async () => {
    const sku = await stocked(5);
    const principal = (await t.app.auth.authenticate(t.adminKey))!.id;
    const body = { lane: 'lane-1', lines: [{ sku, qty: 1 }] };
    const hash = createHash('sha256')
      .update(`POST /v1/orders\n${JSON.stringify(body)}`)
      .digest('hex');
    const now = Date.now();
    // Both claimed an hour ago; one renewed just now (its request still works), one a lease ago (it died).
    for (const [key, renewedAt] of [
      [`alive-${sku}`, now],
      [`died-${sku}`, now - 2 * LEASE_MS],
    ] as const)
      await t.app.db.tx((m) =>
        exec(
          m,
          'INSERT INTO idempotency_key (principal, idem_key, request_hash, status_code, response_json, created_at, renewed_at) VALUES (?, ?, ?, 0, NULL, ?, ?)',
          [principal, key, hash, now - 3_600_000, renewedAt],
        ),
      );
    expect((await t.api('POST', '/v1/orders', body, { 'idempotency-key': `alive-${sku}` })).status).toBe(409);
    const retry = await t.api('POST', '/v1/orders', body, { 'idempotency-key': `died-${sku}` });
    expect(retry.status).toBe(201);
    expect(await reserved(sku)).toBe(1);
  });
});
