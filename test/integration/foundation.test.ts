import { ManualClock } from '../../src/shared/clock';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';

describe.each(testDbKinds())('foundation on $name', ({ name }) => {
  let t: TestApp;
  let clock: ManualClock;
  let cashier: Api;
  let office: Api;

  beforeAll(async () => {
    clock = new ManualClock(new Date('2026-11-24T08:00:00Z'));
    t = await startTestApp(name, { clock, poolSize: 30 });
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function stocked(qty: number, priceFen = 1250): Promise<string> {
    const sku = `SKU-${name}-${++seq}`;
    expect((await office('PUT', `/v1/skus/${sku}`, { name: `item ${seq}`, priceFen })).status).toBe(200);
    if (qty > 0) expect((await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty }] })).status).toBe(201);
    return sku;
  }
  const stock = async (sku: string) => (await cashier('GET', `/v1/stock/${sku}`)).body;

  it('a cash checkout reserves, then sells the stock once', async () => {
    const sku = await stocked(10);
    const order = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 3 }] });
    expect(order.status).toBe(201);
    expect(order.body).toMatchObject({ status: 'reserved', totalFen: 3750 });
    expect(await stock(sku)).toEqual({ sku, onHand: 10, reserved: 3, available: 7 });

    const pay = await cashier('POST', `/v1/orders/${order.body.id}/payments`, {
      method: 'cash',
      amountFen: 3750,
      lane: 'lane-1',
    });
    expect(pay.status).toBe(201);
    expect(pay.body.status).toBe('approved');
    expect(await stock(sku)).toEqual({ sku, onHand: 7, reserved: 0, available: 7 });
    const after = await cashier('GET', `/v1/orders/${order.body.id}`);
    expect(after.body).toMatchObject({ status: 'paid', paidFen: 3750 });
    expect(after.body.payments).toHaveLength(1);
  });

  it('split cash tenders pay the order only when they cover the total', async () => {
    const sku = await stocked(5, 1000);
    const order = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 2 }] })).body;
    await cashier('POST', `/v1/orders/${order.id}/payments`, { method: 'cash', amountFen: 500, lane: 'lane-1' });
    expect((await cashier('GET', `/v1/orders/${order.id}`)).body).toMatchObject({ status: 'reserved', paidFen: 500 });
    const over = await cashier('POST', `/v1/orders/${order.id}/payments`, {
      method: 'cash',
      amountFen: 1600,
      lane: 'lane-1',
    });
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe('amount_exceeds_balance');
    await cashier('POST', `/v1/orders/${order.id}/payments`, { method: 'cash', amountFen: 1500, lane: 'lane-1' });
    expect((await cashier('GET', `/v1/orders/${order.id}`)).body.status).toBe('paid');
    expect(await stock(sku)).toMatchObject({ onHand: 3, reserved: 0 });
    const again = await cashier('POST', `/v1/orders/${order.id}/payments`, {
      method: 'cash',
      amountFen: 1,
      lane: 'lane-1',
    });
    expect(again.status).toBe(409);
  });

  it('an order is reserved all or nothing', async () => {
    const plenty = await stocked(10);
    const scarce = await stocked(1);
    const r = await cashier('POST', '/v1/orders', {
      lane: 'lane-1',
      lines: [
        { sku: plenty, qty: 2 },
        { sku: scarce, qty: 2 },
      ],
    });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('insufficient_stock');
    expect(r.body.error.details.shortfalls).toEqual([{ sku: scarce, requested: 2, available: 1 }]);
    expect(await stock(plenty)).toMatchObject({ reserved: 0, available: 10 });
    expect(await stock(scarce)).toMatchObject({ reserved: 0, available: 1 });
  });

  it('cancelling releases the reservation exactly once', async () => {
    const sku = await stocked(4);
    const order = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 4 }] })).body;
    expect((await cashier('POST', `/v1/orders/${order.id}/cancel`)).body.status).toBe('cancelled');
    expect(await stock(sku)).toMatchObject({ onHand: 4, reserved: 0 });
    const twice = await cashier('POST', `/v1/orders/${order.id}/cancel`);
    expect(twice.status).toBe(409);
    expect(await stock(sku)).toMatchObject({ onHand: 4, reserved: 0 });
  });

  it('the sweep expires an unpaid order past its hold and releases its stock', async () => {
    const sku = await stocked(3);
    const order = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 3 }] })).body;
    expect((await t.api('POST', '/v1/sweeps')).body.expired).toBe(0);
    clock.advance(1801 * 1000);
    const sweep = await t.api('POST', '/v1/sweeps');
    expect(sweep.body.expired).toBeGreaterThanOrEqual(1);
    expect((await cashier('GET', `/v1/orders/${order.id}`)).body.status).toBe('expired');
    expect(await stock(sku)).toMatchObject({ reserved: 0, available: 3 });
  });

  it('an order with an approved partial tender does not expire', async () => {
    const sku = await stocked(3, 1000);
    const order = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 2 }] })).body;
    await cashier('POST', `/v1/orders/${order.id}/payments`, { method: 'cash', amountFen: 500, lane: 'lane-1' });
    clock.advance(3600 * 1000);
    await t.api('POST', '/v1/sweeps');
    expect((await cashier('GET', `/v1/orders/${order.id}`)).body.status).toBe('reserved');
    expect(await stock(sku)).toMatchObject({ reserved: 2 });
  });

  it('200 concurrent orders for 50 units reserve exactly 50', async () => {
    const sku = await stocked(50);
    const results = await Promise.all(
      Array.from({ length: 200 }, () => cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })),
    );
    const codes = results.map((r) => r.status);
    expect(codes.filter((c) => c === 201)).toHaveLength(50);
    expect(codes.filter((c) => c === 409)).toHaveLength(150);
    expect(await stock(sku)).toEqual({ sku, onHand: 50, reserved: 50, available: 0 });
  });

  it('multi-SKU orders racing in opposite SKU order never surface a deadlock', async () => {
    const a = await stocked(1000);
    const b = await stocked(1000);
    const results = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        cashier('POST', '/v1/orders', {
          lane: 'lane-1',
          lines:
            i % 2
              ? [
                  { sku: a, qty: 1 },
                  { sku: b, qty: 1 },
                ]
              : [
                  { sku: b, qty: 1 },
                  { sku: a, qty: 1 },
                ],
        }),
      ),
    );
    expect(results.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
    expect(await stock(a)).toMatchObject({ reserved: 120 });
    expect(await stock(b)).toMatchObject({ reserved: 120 });
  });

  describe('bad input changes nothing', () => {
    let sku: string;
    beforeAll(async () => {
      sku = await stocked(5);
    });
    afterEach(async () => {
      expect(await stock(sku)).toEqual({ sku, onHand: 5, reserved: 0, available: 5 });
    });

    it.each([
      ['negative quantity', { lane: 'lane-1', lines: [{ sku: '$', qty: -1 }] }, 400],
      ['zero quantity', { lane: 'lane-1', lines: [{ sku: '$', qty: 0 }] }, 400],
      ['fractional quantity', { lane: 'lane-1', lines: [{ sku: '$', qty: 1.5 }] }, 400],
      ['huge quantity', { lane: 'lane-1', lines: [{ sku: '$', qty: Number.MAX_SAFE_INTEGER + 2 }] }, 400],
      ['string quantity', { lane: 'lane-1', lines: [{ sku: '$', qty: '2' }] }, 400],
      ['missing lines', { lane: 'lane-1' }, 400],
      ['empty lines', { lane: 'lane-1', lines: [] }, 400],
      ['missing lane', { lines: [{ sku: '$', qty: 1 }] }, 400],
      ['lines not an array', { lane: 'lane-1', lines: { sku: '$', qty: 1 } }, 400],
      ['unknown SKU', { lane: 'lane-1', lines: [{ sku: 'NO-SUCH-SKU', qty: 1 }] }, 422],
      [
        'duplicate lines',
        {
          lane: 'lane-1',
          lines: [
            { sku: '$', qty: 1 },
            { sku: '$', qty: 1 },
          ],
        },
        422,
      ],
    ])('order with %s → %s', async (_what, body, status) => {
      const r = await cashier(
        'POST',
        '/v1/orders',
        JSON.parse(JSON.stringify(body).replace(/"\$"/g, JSON.stringify(sku))),
      );
      expect(r.status).toBe(status);
      expect(typeof r.body.error.code).toBe('string');
    });

    it('a body that is not JSON is a 400', async () => {
      const r = await cashier('POST', '/v1/orders', '{"lane": ', { 'content-type': 'application/json' });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_json');
    });

    it('an oversized body is a 413', async () => {
      const lines = Array.from({ length: 20000 }, (_, i) => ({ sku: `S${i}`, qty: 1 }));
      const r = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines });
      expect(r.status).toBe(413);
    });

    it.each([
      ['negative price', { name: 'x', priceFen: -1 }],
      ['fractional price', { name: 'x', priceFen: 1.5 }],
      ['huge price', { name: 'x', priceFen: 2 ** 60 }],
      ['text price', { name: 'x', priceFen: 'ten' }],
      ['missing name', { priceFen: 100 }],
    ])('a SKU with %s is refused', async (_what, body) => {
      const r = await office('PUT', `/v1/skus/${sku}`, body);
      expect(r.status).toBe(400);
      expect((await office('GET', `/v1/stock/${sku}`)).status).toBe(200);
    });

    it('a receipt naming an unknown SKU receives nothing', async () => {
      const r = await office('POST', '/v1/stock/receipts', {
        lines: [
          { sku, qty: 3 },
          { sku: 'NOPE', qty: 1 },
        ],
      });
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe('unknown_sku');
    });

    it('cash for a malformed amount is refused', async () => {
      const order = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })).body;
      for (const amountFen of [0, -5, 1.5, '100', 2 ** 60]) {
        const r = await cashier('POST', `/v1/orders/${order.id}/payments`, {
          method: 'cash',
          amountFen,
          lane: 'lane-1',
        });
        expect(r.status).toBe(400);
      }
      expect((await cashier('POST', `/v1/orders/${order.id}/cancel`)).status).toBe(200);
    });

    it('an unknown order id is a 404, a malformed one a 400', async () => {
      expect((await cashier('GET', '/v1/orders/00000000-0000-4000-8000-000000000000')).status).toBe(404);
      expect((await cashier('GET', '/v1/orders/not-an-id')).status).toBe(400);
    });
  });

  describe('keys and roles', () => {
    it('refuses a request without a valid key', async () => {
      const anon = await fetch(`${t.url}/v1/stock/x`);
      expect(anon.status).toBe(401);
      const wrong = await fetch(`${t.url}/v1/stock/x`, { headers: { authorization: 'Bearer pos_nope' } });
      expect(wrong.status).toBe(401);
    });

    it('refuses a cashier key on back-office routes and on key creation', async () => {
      expect((await cashier('PUT', '/v1/skus/X1', { name: 'x', priceFen: 1 })).status).toBe(403);
      expect((await cashier('POST', '/v1/api-keys', { role: 'admin' })).status).toBe(403);
    });

    it('keeps a lane-bound cashier key on its lane', async () => {
      const lane2 = await t.as('cashier', 'lane-2');
      const sku = await stocked(2);
      const r = await lane2('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('lane_mismatch');
    });
  });

  describe('Idempotency-Key', () => {
    it('replays the first answer for the same key and body', async () => {
      const sku = await stocked(5);
      const body = { lane: 'lane-1', lines: [{ sku, qty: 2 }] };
      const first = await cashier('POST', '/v1/orders', body, { 'idempotency-key': `k-${sku}` });
      const second = await cashier('POST', '/v1/orders', body, { 'idempotency-key': `k-${sku}` });
      expect(second.status).toBe(201);
      expect(second.body.id).toBe(first.body.id);
      expect(await stock(sku)).toMatchObject({ reserved: 2 });
    });

    it('refuses the same key with another body', async () => {
      const sku = await stocked(5);
      await cashier(
        'POST',
        '/v1/orders',
        { lane: 'lane-1', lines: [{ sku, qty: 1 }] },
        { 'idempotency-key': `r-${sku}` },
      );
      const r = await cashier(
        'POST',
        '/v1/orders',
        { lane: 'lane-1', lines: [{ sku, qty: 2 }] },
        { 'idempotency-key': `r-${sku}` },
      );
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe('idempotency_key_reused');
      expect(await stock(sku)).toMatchObject({ reserved: 1 });
    });

    it('makes concurrent retries of one cash payment pay once', async () => {
      const sku = await stocked(5, 700);
      const order = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })).body;
      const body = { method: 'cash', amountFen: 700, lane: 'lane-1' };
      const rs = await Promise.all(
        Array.from({ length: 5 }, () =>
          cashier('POST', `/v1/orders/${order.id}/payments`, body, { 'idempotency-key': `pay-${order.id}` }),
        ),
      );
      expect(rs.filter((r) => r.status === 201).length).toBeGreaterThanOrEqual(1);
      expect(rs.every((r) => r.status === 201 || r.status === 409)).toBe(true);
      const after = (await cashier('GET', `/v1/orders/${order.id}`)).body;
      expect(after.payments).toHaveLength(1);
      expect(after.paidFen).toBe(700);
    });
  });

  it('serves health and metrics without a key', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const m = await (await fetch(`${t.url}/metrics`)).text();
    expect(m).toMatch(/pos_payments_held\{status="unknown"\} \d+/);
  });
});
