/**
 * Issue 15: an order's (and a cash tender's) Idempotency-Key answer commits in the transaction that does
 * the work. The fault: the work commits and the process dies before the answer is recorded; after the
 * key's lease a retry used to run the request again (a second, orphan order holding stock). Here "the
 * process dies" is every database write failing from the moment the work's transaction has committed.
 */
import { exec, rows } from '../../src/db/db';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { systemClock } from '../../src/shared/clock';

const cases = testDbKinds().flatMap(({ name }) => [
  { name, batching: 'on' as const },
  { name, batching: 'off' as const },
]);

describe.each(cases)('idempotency in the work transaction on $name, batching $batching', ({ name, batching }) => {
  let t: TestApp;
  let office: Api;
  let till: Api;
  let dead = false;

  beforeAll(async () => {
    const before = process.env.POS_BATCH;
    process.env.POS_BATCH = batching;
    try {
      // lane-1 takes cash; lane-2's terminal takes the card and goes silent (the attempt ends unknown).
      t = await startTestApp(name, {
        config: { cashLanes: ['lane-1'] },
        terminals: new Map([['lane-2', new SilentTerminal('lane-2', new MemorySimBank(), systemClock, () => 'none')]]),
      });
    } finally {
      if (before === undefined) delete process.env.POS_BATCH;
      else process.env.POS_BATCH = before;
    }
    office = await t.as('backoffice');
    till = await t.as('cashier', 'lane-1');
    const tx = t.app.db.tx.bind(t.app.db);
    t.app.db.tx = ((fn) => (dead ? Promise.reject(new Error('the process died')) : tx(fn))) as typeof t.app.db.tx;
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    dead = false;
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function stocked(qty: number): Promise<string> {
    const sku = `I${name}${batching}${++seq}`;
    expect((await office('PUT', `/v1/skus/${sku}`, { name: `thing ${sku}`, priceFen: 100 })).status).toBe(200);
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty }] });
    return sku;
  }
  const level = async (sku: string) => (await office('GET', `/v1/stock/${sku}`)).body;
  const ordersOf = (sku: string) =>
    t.app.db.read((m) =>
      rows<{ id: string; status: string }>(
        m,
        'SELECT o.id, o.status FROM orders o JOIN order_line l ON l.order_id = o.id WHERE l.sku = ?',
        [sku],
      ),
    );
  /** What a retry finds once the dead request's lease is over (as if IDEMPOTENCY_LEASE_MS had passed). */
  const leaseOver = (key: string) =>
    t.app.db.tx((m) =>
      exec(m, 'UPDATE idempotency_key SET created_at = created_at - 3600000 WHERE idem_key = ?', [key]),
    );
  /** The process "dies" right after `method` of `service` has committed its work. */
  function dieAfter<S extends object>(service: S, method: keyof S): () => void {
    const own = Object.prototype.hasOwnProperty.call(service, method);
    const orig = service[method] as (...a: unknown[]) => Promise<unknown>;
    (service as Record<keyof S, unknown>)[method] = async (...a: unknown[]) => {
      const r = await orig.apply(service, a);
      dead = true;
      return r;
    };
    return () => {
      if (own) (service as Record<keyof S, unknown>)[method] = orig;
      else delete (service as Record<keyof S, unknown>)[method];
    };
  }

  it('an order committed by a request that died before answering: the retry replays it, no second order', async () => {
    const sku = await stocked(5);
    const body = { lane: 'lane-1', lines: [{ sku, qty: 2 }] };
    const key = `order-${sku}`;
    const undo = dieAfter(t.app.orders, 'create');
    try {
      await till('POST', '/v1/orders', body, { 'idempotency-key': key }); // its answer is lost with the process
    } finally {
      undo();
    }
    dead = false;
    await leaseOver(key);
    const retry = await till('POST', '/v1/orders', body, { 'idempotency-key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    const made = await ordersOf(sku);
    expect(made).toEqual([{ id: retry.body.id, status: 'reserved' }]);
    expect(retry.body).toMatchObject({ status: 'reserved', totalFen: 200, lines: [{ sku, qty: 2 }] });
    expect(await level(sku)).toMatchObject({ reserved: 2 });
    await till('POST', `/v1/orders/${retry.body.id}/cancel`, {});
  });

  it('a stock receipt committed by a request that died before answering: the retry replays it, stock received once', async () => {
    const sku = await stocked(5);
    const key = `receipt-${sku}`;
    const body = { lines: [{ sku, qty: 7 }], ref: `delivery-${sku}` };
    const undo = dieAfter(t.app.inventory, 'receive');
    try {
      await office('POST', '/v1/stock/receipts', body, { 'idempotency-key': key });
    } finally {
      undo();
    }
    dead = false;
    await leaseOver(key);
    const retry = await office('POST', '/v1/stock/receipts', body, { 'idempotency-key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    expect(retry.body).toMatchObject({ ref: `delivery-${sku}`, levels: [{ sku, onHand: 12 }] });
    expect(await level(sku)).toMatchObject({ onHand: 12 });
  });

  it('a return committed by a request that died before answering: the retry replays it, no second return', async () => {
    const sku = await stocked(5);
    const order = await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 2 }] });
    const paid = await till('POST', `/v1/orders/${order.body.id}/payments`, {
      method: 'cash',
      amountFen: 200,
      lane: 'lane-1',
    });
    expect(paid.status).toBe(201);
    const key = `return-${sku}`;
    const body = { lines: [{ lineNo: 1, qty: 1 }], restock: true };
    const returns = t.app.extensions.find((e) => e.name === 'returns')!.service as { drive(id: string): Promise<void> };
    const undo = dieAfter(returns, 'drive');
    try {
      await till('POST', `/v1/orders/${order.body.id}/returns`, body, { 'idempotency-key': key });
    } finally {
      undo();
    }
    dead = false;
    await leaseOver(key);
    const retry = await till('POST', `/v1/orders/${order.body.id}/returns`, body, { 'idempotency-key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    const after = await till('GET', `/v1/orders/${order.body.id}`);
    expect(after.body.returns.map((r: { id: string }) => r.id)).toEqual([retry.body.id]);
    expect(await level(sku)).toMatchObject({ onHand: 4 });
  });

  it('a cash tender committed by a request that died before answering: the retry replays the same payment', async () => {
    const sku = await stocked(5);
    const order = await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] });
    expect(order.status).toBe(201);
    const key = `cash-${sku}`;
    const tender = { method: 'cash', amountFen: 100, lane: 'lane-1' };
    const undo = dieAfter(t.app.payments, 'tender');
    try {
      await till('POST', `/v1/orders/${order.body.id}/payments`, tender, { 'idempotency-key': key });
    } finally {
      undo();
    }
    dead = false;
    await leaseOver(key);
    const retry = await till('POST', `/v1/orders/${order.body.id}/payments`, tender, { 'idempotency-key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    expect(retry.body).toMatchObject({ orderId: order.body.id, method: 'cash', amountFen: 100, status: 'approved' });
    const after = await till('GET', `/v1/orders/${order.body.id}`);
    expect(after.body).toMatchObject({ status: 'paid', paidFen: 100 });
    expect(after.body.payments.map((p: { id: string }) => p.id)).toEqual([retry.body.id]);
    expect(await level(sku)).toMatchObject({ onHand: 4, reserved: 0 });
  });

  it('a card tender committed by a request that died before answering: the retry replays the same attempt, never a second', async () => {
    const sku = await stocked(5);
    const lane2 = await t.as('cashier', 'lane-2');
    const order = await lane2('POST', '/v1/orders', { lane: 'lane-2', lines: [{ sku, qty: 1 }] });
    expect(order.status).toBe(201);
    const key = `card-${sku}`;
    const tender = { method: 'card', amountFen: 100, lane: 'lane-2' };
    const undo = dieAfter(t.app.payments, 'tender');
    try {
      await lane2('POST', `/v1/orders/${order.body.id}/payments`, tender, { 'idempotency-key': key });
    } finally {
      undo();
    }
    dead = false;
    await leaseOver(key);
    const retry = await lane2('POST', `/v1/orders/${order.body.id}/payments`, tender, { 'idempotency-key': key });
    expect(retry.status).toBe(202);
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    expect(retry.body).toMatchObject({ orderId: order.body.id, method: 'card', amountFen: 100, status: 'pending' });
    const made = await t.app.db.read((m) =>
      rows<{ id: string }>(m, 'SELECT id FROM payment WHERE order_id = ?', [order.body.id]),
    );
    expect(made).toEqual([{ id: retry.body.id }]); // one attempt: the retry did not start a second charge
    expect(await level(sku)).toMatchObject({ onHand: 5, reserved: 1 }); // held while its outcome is open
  });

  it('a request whose key a retry took over meanwhile commits nothing: 409, and the retry is the one that counts', async () => {
    const sku = await stocked(5);
    const body = { lane: 'lane-1', lines: [{ sku, qty: 1 }] };
    const key = `taken-${sku}`;
    const orders = t.app.orders;
    const create = orders.create;
    // While this request works, a retry takes its expired lease over (a new created_at).
    orders.create = async (...a: Parameters<typeof create>) => {
      await t.app.db.tx((m) =>
        exec(m, 'UPDATE idempotency_key SET created_at = created_at + 1 WHERE idem_key = ?', [key]),
      );
      return create.apply(orders, a);
    };
    let r;
    try {
      r = await till('POST', '/v1/orders', body, { 'idempotency-key': key });
    } finally {
      delete (orders as unknown as Record<string, unknown>).create;
    }
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('idempotency_key_in_progress');
    expect(await ordersOf(sku)).toEqual([]);
    expect(await level(sku)).toMatchObject({ reserved: 0 });
    const [rec] = await t.app.db.read((m) =>
      rows<{ status_code: unknown }>(m, 'SELECT status_code FROM idempotency_key WHERE idem_key = ?', [key]),
    );
    expect(Number(rec.status_code)).toBe(0); // still the retry's claim, not overwritten by the loser's 409
  });

  it('concurrent keyed orders each store their own answer with their order; replays match byte for byte', async () => {
    const sku = await stocked(100);
    const body = (i: number) => ({ lane: 'lane-1', lines: [{ sku, qty: 1 + (i % 3) }] });
    const first = await Promise.all(
      Array.from({ length: 24 }, (_, i) => till('POST', '/v1/orders', body(i), { 'idempotency-key': `c-${sku}-${i}` })),
    );
    expect(first.map((r) => r.status)).toEqual(first.map(() => 201));
    const again = await Promise.all(
      Array.from({ length: 24 }, (_, i) => till('POST', '/v1/orders', body(i), { 'idempotency-key': `c-${sku}-${i}` })),
    );
    expect(again.map((r) => r.headers.get('idempotent-replay'))).toEqual(again.map(() => 'true'));
    expect(again.map((r) => r.body)).toEqual(first.map((r) => r.body));
    expect((await ordersOf(sku)).length).toBe(24);
    for (const r of first) await till('POST', `/v1/orders/${r.body.id}/cancel`, {});
  });

  it("claims of concurrent keyed requests commit together; a key taken already only fails its own request's claim", async () => {
    const sku = await stocked(100);
    const body = { lane: 'lane-1', lines: [{ sku, qty: 1 }] };
    const claims = async () => {
      const m = (await t.app.metrics.registry.getMetricsAsJSON()).find((x) => x.name === 'pos_batch_size');
      const v = (m?.values ?? []) as { metricName?: string; labels: Record<string, unknown>; value: number }[];
      const of = (name: string) =>
        v.find((x) => x.metricName === name && x.labels.batch === 'idempotency_claims')?.value ?? 0;
      return { claims: of('pos_batch_size_sum'), batches: of('pos_batch_size_count') };
    };
    const before = await claims();
    // 16 new keys, and in the same burst the first two keys again: once with the same body, once with another.
    const burst = await Promise.all([
      ...Array.from({ length: 16 }, (_, i) => till('POST', '/v1/orders', body, { 'idempotency-key': `b-${sku}-${i}` })),
      till('POST', '/v1/orders', body, { 'idempotency-key': `b-${sku}-0` }),
      till('POST', '/v1/orders', { ...body, lines: [{ sku, qty: 2 }] }, { 'idempotency-key': `b-${sku}-1` }),
    ]);
    const after = await claims();
    const [again, other] = burst.slice(16);
    // The repeat of key 0 is either its replay (the first had answered) or "in progress"; never a second order.
    expect([201, 409]).toContain(again.status);
    if (again.status === 201) expect(again.body).toEqual(burst[0].body);
    else expect(again.body.error.code).toBe('idempotency_key_in_progress');
    // Key 1 with another body: refused (422, or 409 while the first still holds it), never an order of 2.
    expect([422, 409]).toContain(other.status);
    expect(burst.slice(0, 16).map((r) => r.status)).toEqual(burst.slice(0, 16).map(() => 201));
    const orders = await ordersOf(sku);
    expect(orders.length).toBe(16);
    expect((await level(sku)).reserved).toBe(16);
    const stored = await t.app.db.read((m) =>
      rows<{ idem_key: string; status_code: unknown }>(
        m,
        'SELECT idem_key, status_code FROM idempotency_key WHERE idem_key LIKE ?',
        [`b-${sku}-%`],
      ),
    );
    expect(stored.length).toBe(16);
    expect(stored.every((r) => Number(r.status_code) === 201)).toBe(true);
    if (batching === 'on') {
      // Every keyed request claimed through the batcher, and claims shared transactions.
      expect(after.claims - before.claims).toBeGreaterThanOrEqual(18);
      expect(after.batches - before.batches).toBeLessThan(after.claims - before.claims);
    }
    for (const r of burst.slice(0, 16)) await till('POST', `/v1/orders/${r.body.id}/cancel`, {});
  });
});
