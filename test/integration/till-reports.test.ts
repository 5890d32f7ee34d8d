/**
 * The routes the pages read: the till (look-up, quote, cash with change) and the back-office
 * reports (catalog, ledger, on-hand history, holders, audit, ageing, sales by tender, counts,
 * seat holds). On both databases; every scenario ends with the stock invariants checked.
 */
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';

describe.each(testDbKinds())('till and reports on $name', ({ name }) => {
  let t: TestApp;
  let cashier: Api;
  let office: Api;

  beforeAll(async () => {
    t = await startTestApp(name, { config: { cashLanes: ['lane-1', 'lane-2'] } });
    cashier = await t.as('cashier', 'lane-1');
    office = await t.as('backoffice');
    await office('PUT', '/v1/skus/TR-MILK', { name: '牛奶 100%_pure', priceFen: 1250 });
    await office('PUT', '/v1/skus/TR-BREAD', { name: '面包', priceFen: 800 });
    await office('POST', '/v1/stock/receipts', {
      lines: [
        { sku: 'TR-MILK', qty: 10 },
        { sku: 'TR-BREAD', qty: 5 },
      ],
    });
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  it('looks up a code and searches by name, with LIKE wildcards taken literally', async () => {
    expect((await cashier('GET', '/v1/till/items/TR-MILK')).body).toEqual({
      sku: 'TR-MILK',
      name: '牛奶 100%_pure',
      priceFen: 1250,
      available: 10,
    });
    expect((await cashier('GET', '/v1/till/items/NOPE')).status).toBe(404);
    expect(
      (await cashier('GET', `/v1/till/items?q=${encodeURIComponent('%_')}`)).body.items.map((i: any) => i.sku),
    ).toEqual(['TR-MILK']);
    expect(
      (await cashier('GET', `/v1/till/items?q=${encodeURIComponent('面')}`)).body.items.map((i: any) => i.sku),
    ).toEqual(['TR-BREAD']);
    expect((await cashier('GET', '/v1/till/items?q=')).status).toBe(400);
  });

  it("quotes a basket at today's prices; unknown SKUs are a 422 naming them", async () => {
    const q = await cashier('POST', '/v1/till/quote', {
      lines: [
        { sku: 'TR-MILK', qty: 2 },
        { sku: 'TR-BREAD', qty: 1 },
      ],
    });
    expect(q.body).toMatchObject({
      totalFen: 3300,
      lines: [
        { sku: 'TR-MILK', amountFen: 2500 },
        { sku: 'TR-BREAD', amountFen: 800 },
      ],
    });
    const bad = await cashier('POST', '/v1/till/quote', { lines: [{ sku: 'GHOST', qty: 1 }] });
    expect(bad.status).toBe(422);
    expect(bad.body.error).toMatchObject({ code: 'unknown_sku', details: { skus: ['GHOST'] } });
  });

  it('cash: pays the balance, answers the change; too little is refused and nothing is taken', async () => {
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'TR-MILK', qty: 2 }] })).body;
    const short = await cashier('POST', `/v1/till/orders/${o.id}/cash`, { lane: 'lane-1', tenderedFen: 2000 });
    expect(short.status).toBe(422);
    expect(short.body.error.code).toBe('tendered_too_little');
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body).toMatchObject({ status: 'reserved', paidFen: 0 });
    const other = await cashier('POST', `/v1/till/orders/${o.id}/cash`, { lane: 'lane-2', tenderedFen: 5000 });
    expect(other.status).toBe(403);
    const r = await cashier('POST', `/v1/till/orders/${o.id}/cash`, { lane: 'lane-1', tenderedFen: 5000 });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      tenderedFen: 5000,
      changeFen: 2500,
      payment: { method: 'cash', amountFen: 2500, status: 'approved' },
      order: { status: 'paid' },
    });
    const again = await cashier('POST', `/v1/till/orders/${o.id}/cash`, { lane: 'lane-1', tenderedFen: 5000 });
    expect(again.status).toBe(422);
    expect(again.body.error.code).toBe('nothing_to_pay');
  });

  it("cash: a lane-bound key takes no money for another lane's order", async () => {
    const other = (await t.api('POST', '/v1/orders', { lane: 'lane-2', lines: [{ sku: 'TR-BREAD', qty: 1 }] })).body;
    const r = await cashier('POST', `/v1/till/orders/${other.id}/cash`, { lane: 'lane-1', tenderedFen: 1000 });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('wrong_lane');
    expect((await t.api('GET', `/v1/orders/${other.id}`)).body).toMatchObject({ status: 'reserved', paidFen: 0 });
    expect((await t.api('POST', `/v1/orders/${other.id}/cancel`)).status).toBe(200);
  });

  it("the ledger pages newest first, the on-hand history ends at today's level, holders name the order", async () => {
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'TR-BREAD', qty: 2 }] })).body;
    const first = (await office('GET', '/v1/reports/skus/TR-BREAD/movements?limit=1')).body;
    expect(first.items).toHaveLength(1);
    expect(first.items[0]).toMatchObject({ kind: 'reservation', reservedDelta: 2, orderId: o.id });
    const rest = (await office('GET', `/v1/reports/skus/TR-BREAD/movements?limit=50&cursor=${first.nextCursor}`)).body;
    expect(rest.items[rest.items.length - 1]).toMatchObject({ kind: 'receipt', onHandDelta: 5 });
    expect(rest.nextCursor).toBeNull();
    const hist = (await office('GET', '/v1/reports/skus/TR-BREAD/on-hand')).body.points;
    expect(hist[0].onHand).toBe(0);
    expect(hist[hist.length - 1].onHand).toBe(5);
    const holders = (await office('GET', '/v1/reports/skus/TR-BREAD/holders')).body.items;
    expect(holders).toEqual([
      expect.objectContaining({ orderId: o.id, qty: 2, orderStatus: 'reserved', payment: null }),
    ]);
    expect((await office('GET', '/v1/reports/skus/GHOST/movements')).status).toBe(404);
    expect((await cashier('GET', '/v1/reports/skus/TR-BREAD/movements')).status).toBe(403);
    await cashier('POST', `/v1/orders/${o.id}/cancel`);
  });

  it('catalog pages by SKU and searches; audit filters by entity id and actor, newest first', async () => {
    const p1 = (await office('GET', '/v1/reports/skus?limit=1')).body;
    expect(p1.items.map((i: any) => i.sku)).toEqual(['TR-BREAD']);
    const p2 = (await office('GET', `/v1/reports/skus?limit=1&cursor=${p1.nextCursor}`)).body;
    expect(p2.items.map((i: any) => i.sku)).toEqual(['TR-MILK']);
    expect((await office('GET', '/v1/reports/skus?q=milk')).body.items.map((i: any) => i.sku)).toEqual(['TR-MILK']);
    expect(
      (await office('PUT', '/v1/skus/TR-BREAD', { name: '面包', priceFen: 800, barcode: '6901234567892' })).status,
    ).toBe(200);
    expect((await office('GET', '/v1/reports/skus?q=6901234567892')).body.items).toEqual([
      expect.objectContaining({ sku: 'TR-BREAD', barcode: '6901234567892' }),
    ]);
    const a = (await office('GET', '/v1/reports/audit?entityId=TR-MILK')).body;
    expect(a.items.length).toBeGreaterThan(0);
    expect(a.items.every((r: any) => r.entityId === 'TR-MILK')).toBe(true);
    const actor = a.items[0].actor;
    const byActor = (await office('GET', `/v1/reports/audit?actor=${encodeURIComponent(actor)}&limit=2`)).body;
    expect(byActor.items.every((r: any) => r.actor === actor)).toBe(true);
    expect(byActor.items[0].id).toBeGreaterThan(byActor.items[1]?.id ?? 0);
    expect((await office('GET', '/v1/reports/audit?bogus=1')).status).toBe(400);
  });

  it('ageing, sales by tender, counts and events answer in their shapes', async () => {
    const ageing = (await office('GET', '/v1/reports/held-ageing')).body.statuses;
    expect(ageing.map((s: any) => s.status)).toEqual(['unknown', 'suspense', 'disputed']);
    const days = (await office('GET', '/v1/reports/sales-by-tender?days=2')).body.days;
    expect(days).toEqual([expect.objectContaining({ method: 'cash', count: 1, amountFen: 2500 })]);
    await office('POST', '/v1/stock-counts', {});
    expect((await office('GET', '/v1/reports/stock-counts')).body.items).toHaveLength(1);
    await office('POST', '/v1/events', {
      id: 'ev1',
      name: '演出',
      seats: [{ id: 'A1', section: 'S', row: 'A', number: 1, priceFen: 100 }],
    });
    await cashier('POST', '/v1/events/ev1/holds', { seats: ['A1'] });
    expect((await office('GET', '/v1/reports/events')).body.items).toEqual([
      expect.objectContaining({ id: 'ev1', seats: 1 }),
    ]);
    expect((await office('GET', '/v1/reports/events/ev1/holds')).body.items).toEqual([
      expect.objectContaining({ seatId: 'A1', payment: null }),
    ]);
  });
});
