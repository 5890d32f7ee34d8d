import { ManualClock } from '../../src/shared/clock';
import { DomainError } from '../../src/shared/errors';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';

/** The reservation engine: concurrent orders gathered into one transaction, each decided on its own. */
describe.each(testDbKinds())('order batching on $name', ({ name }) => {
  let t: TestApp;
  let cashier: Api;
  let office: Api;
  const batches: { size: number; fallback: boolean }[] = [];

  beforeAll(async () => {
    t = await startTestApp(name, { clock: new ManualClock(new Date('2026-11-24T08:00:00Z')), poolSize: 30 });
    t.app.orders.observeBatches((b) => batches.push(b));
    t.app.payments.observeBatches((b) => batches.push(b));
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
  });
  beforeEach(() => {
    batches.length = 0;
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function stocked(qty: number, priceFen = 100): Promise<string> {
    const sku = `B-${name}-${++seq}`;
    expect((await office('PUT', `/v1/skus/${sku}`, { name: `item ${seq}`, priceFen })).status).toBe(200);
    if (qty > 0) expect((await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty }] })).status).toBe(201);
    return sku;
  }
  const stock = async (sku: string) => (await cashier('GET', `/v1/stock/${sku}`)).body;

  it('200 concurrent orders for 50 units: exactly 50, in batches of more than one', async () => {
    const sku = await stocked(50);
    const rs = await Promise.all(
      Array.from({ length: 200 }, () => cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })),
    );
    expect(rs.filter((r) => r.status === 201)).toHaveLength(50);
    expect(rs.filter((r) => r.status === 409 && r.body.error.code === 'insufficient_stock')).toHaveLength(150);
    expect(await stock(sku)).toEqual({ sku, onHand: 50, reserved: 50, available: 0 });
    expect(batches.some((b) => b.size > 1)).toBe(true);
    expect(batches.filter((b) => b.fallback)).toEqual([]);
  });

  it('decides each order of a batch in arrival order: a short order fails alone', async () => {
    const a = await stocked(10);
    const b = await stocked(3);
    const submit = (lines: { sku: string; qty: number }[]) =>
      t.app.orders.create({ lane: 'lane-1', lines }, 'test').then(
        (v) => ({ ok: true as const, v }),
        (e: DomainError) => ({ ok: false as const, code: e.code, details: e.details }),
      );
    // Submitted in one tick: they share a batch.
    const rs = await Promise.all([
      submit([{ sku: a, qty: 8 }]),
      submit([{ sku: a, qty: 5 }]), // only 2 left: refused
      submit([
        { sku: a, qty: 2 },
        { sku: b, qty: 3 },
      ]), // fits exactly
      submit([{ sku: 'NO-SUCH-SKU', qty: 1 }]),
      submit([{ sku: b, qty: 1 }]), // b is gone
    ]);
    expect(batches).toEqual([expect.objectContaining({ size: 5, fallback: false })]);
    expect(rs.map((r) => (r.ok ? r.v.status : r.code))).toEqual([
      'reserved',
      'insufficient_stock',
      'reserved',
      'unknown_sku',
      'insufficient_stock',
    ]);
    expect(rs[1]).toMatchObject({ details: { shortfalls: [{ sku: a, requested: 5, available: 2 }] } });
    expect(rs[2]).toMatchObject({
      v: {
        totalFen: 500,
        lines: [
          { sku: a, qty: 2, amountFen: 200 },
          { sku: b, qty: 3, amountFen: 300 },
        ],
      },
    });
    expect(await stock(a)).toMatchObject({ reserved: 10, available: 0 });
    expect(await stock(b)).toMatchObject({ reserved: 3, available: 0 });
    const order = await cashier('GET', `/v1/orders/${(rs[2] as { v: { id: string } }).v.id}`);
    expect(order.body).toMatchObject({
      status: 'reserved',
      totalFen: 500,
      lines: [
        { lineNo: 1, reservation: 'active' },
        { lineNo: 2, reservation: 'active' },
      ],
    });
  });

  it('cash tenders of many orders share a batch: each order paid once, its stock sold once', async () => {
    const sku = await stocked(100, 250);
    const orders = await Promise.all(
      Array.from({ length: 40 }, () => cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 2 }] })),
    );
    expect(orders.map((o) => o.status)).toEqual(Array(40).fill(201));
    batches.length = 0;
    const pays = await Promise.all(
      orders.map((o) =>
        cashier('POST', `/v1/orders/${o.body.id}/payments`, { method: 'cash', amountFen: 500, lane: 'lane-1' }),
      ),
    );
    expect(pays.map((p) => p.status)).toEqual(Array(40).fill(201));
    expect(pays[0].body).toMatchObject({
      method: 'cash',
      status: 'approved',
      amountFen: 500,
      card: null,
      refund: null,
    });
    expect(batches.some((b) => b.size > 1)).toBe(true);
    expect(batches.filter((b) => b.fallback)).toEqual([]);
    expect(await stock(sku)).toEqual({ sku, onHand: 20, reserved: 0, available: 20 });
    const one = await cashier('GET', `/v1/orders/${orders[7].body.id}`);
    expect(one.body).toMatchObject({
      status: 'paid',
      paidFen: 500,
      lines: [{ reservation: 'sold' }],
      payments: [{ method: 'cash', status: 'approved' }],
    });
  });

  it('racing cash tenders for one order in one batch: paid once, the rest refused, partial tenders add up', async () => {
    const sku = await stocked(10, 300);
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })).body;
    const tender = (amountFen: number) =>
      t.app.payments.tender(o.id, { method: 'cash', amountFen, lane: 'lane-1' }, 'test').then(
        (v) => v.status,
        (e: DomainError) => e.code,
      );
    const rs = await Promise.all([tender(100), tender(500), tender(200), tender(300), tender(100)]);
    expect(rs).toEqual(['approved', 'amount_exceeds_balance', 'approved', 'order_not_payable', 'order_not_payable']);
    expect(batches.filter((b) => !b.fallback).map((b) => b.size)).toContain(5);
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body).toMatchObject({
      status: 'paid',
      paidFen: 300,
      overpaidFen: 0,
    });
    expect(await stock(sku)).toEqual({ sku, onHand: 9, reserved: 0, available: 9 });
  });

  it('coupon uses ride in the batch: a short order takes no use, the uses run out in arrival order', async () => {
    const a = await stocked(3, 1000);
    const code = `BATCH-${name}-${++seq}`;
    expect(
      (await office('PUT', `/v1/coupons/${code}`, { kind: 'amount_off', amountFen: 300, maxUses: 2 })).status,
    ).toBe(200);
    const submit = (qty: number, coupon?: string) =>
      t.app.orders.create({ lane: 'lane-1', lines: [{ sku: a, qty }], coupon }, 'test').then(
        (v) => ({ ok: true as const, v }),
        (e: DomainError) => ({ ok: false as const, code: e.code }),
      );
    const rs = await Promise.all([submit(1, code), submit(5, code), submit(1, code), submit(1, code), submit(1)]);
    expect(batches).toEqual([expect.objectContaining({ size: 5, fallback: false })]);
    expect(rs.map((r) => (r.ok ? `${r.v.totalFen}/${r.v.discountFen}` : r.code))).toEqual([
      '700/300',
      'insufficient_stock',
      '700/300',
      'coupon_exhausted',
      '1000/0',
    ]);
    expect((await office('GET', `/v1/coupons/${code}`)).body).toMatchObject({ used: 0, reserved: 2, remaining: 0 });
    expect(await stock(a)).toMatchObject({ reserved: 3, available: 0 });
    const first = await cashier('GET', `/v1/orders/${(rs[0] as { v: { id: string } }).v.id}`);
    expect(first.body).toMatchObject({
      coupon: code,
      subtotalFen: 1000,
      discountFen: 300,
      totalFen: 700,
      lines: [{ discountFen: 300, netFen: 700 }],
    });
    // Paid in a cash batch: the coupon's reserved use becomes a used one (the paid hook ran).
    expect(
      (
        await cashier('POST', `/v1/orders/${(rs[0] as { v: { id: string } }).v.id}/payments`, {
          method: 'cash',
          amountFen: 700,
          lane: 'lane-1',
        })
      ).status,
    ).toBe(201);
    expect((await office('GET', `/v1/coupons/${code}`)).body).toMatchObject({ used: 1, reserved: 1 });
  });
});
