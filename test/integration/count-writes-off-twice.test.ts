import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { ManualClock } from '../../src/shared/clock';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';

/**
 * Defect 7, "a count that writes off twice": what is held off the shelf is taken when the SKU is
 * counted, and approval posts the shelf against the books now, with what settled since counted once.
 */
describe.each(testDbKinds())('a count that writes off twice, on $name', ({ name }) => {
  let t: TestApp;
  let office: Api;
  let till: Api;
  const clock = new ManualClock(new Date('2026-11-25T02:00:00Z'));

  beforeAll(async () => {
    t = await startTestApp(name, {
      clock,
      terminals: new Map([['lane-1', new SilentTerminal('lane-1', new MemorySimBank(), clock)]]),
    });
    office = await t.as('backoffice');
    till = await t.as('cashier');
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  /** A SKU with 10 on hand and an order for 2 of them whose card payment is unknown (the customer left with them). */
  async function tenWithTwoOnAnUnknownCard(): Promise<{ sku: string; order: string; payment: string }> {
    const sku = `W${name}${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen: 100 });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 10 }] });
    const o = (await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 2 }] })).body;
    const p = (
      await till('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen: o.totalFen, lane: 'lane-1' })
    ).body;
    expect((await till('GET', `/v1/payments/${p.id}?wait=5`)).body.status).toBe('unknown');
    return { sku, order: o.id, payment: p.id };
  }
  const level = async (sku: string) => (await till('GET', `/v1/stock/${sku}`)).body;
  async function countShelf(sku: string, counted: number): Promise<string> {
    const id = (await office('POST', '/v1/stock-counts', { skus: [sku] })).body.id;
    expect((await office('PUT', `/v1/stock-counts/${id}/lines`, [{ sku, counted }])).status).toBe(200);
    return id;
  }

  it('the unknown card is confirmed approved before approval: nothing more is written off (8 on the shelf, 8 on the books)', async () => {
    const { sku, payment } = await tenWithTwoOnAnUnknownCard();
    const id = await countShelf(sku, 8);
    const before = (await office('GET', `/v1/stock-counts/${id}`)).body.lines[0];
    expect(before).toMatchObject({
      counted: 8,
      expectedAtCount: 10,
      heldByOpenPayments: 2,
      adjustment: 0,
      writeOff: 0,
    });
    expect(
      (await office('POST', `/v1/payments/${payment}/resolve`, { outcome: 'approved', note: 'acquirer says charged' }))
        .status,
    ).toBe(200);
    expect(await level(sku)).toMatchObject({ onHand: 8, reserved: 0 });
    // The sale of goods already off the shelf is not a movement to recount for.
    expect((await office('GET', `/v1/stock-counts/${id}`)).body.lines[0]).toMatchObject({
      movedSinceCount: false,
      adjustment: 0,
    });
    const ok = await office('POST', `/v1/stock-counts/${id}/approve`, {});
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ adjustments: 0, totals: { shrinkageUnits: 0 } });
    expect(await level(sku)).toMatchObject({ onHand: 8, reserved: 0 });
  });

  it('the unknown card is declined and the order released: the goods left with the customer, so they are written off once', async () => {
    const { sku, order, payment } = await tenWithTwoOnAnUnknownCard();
    const id = await countShelf(sku, 8);
    expect(
      (
        await office('POST', `/v1/payments/${payment}/resolve`, {
          outcome: 'declined',
          note: 'acquirer says not charged',
        })
      ).status,
    ).toBe(200);
    expect((await till('POST', `/v1/orders/${order}/cancel`)).status).toBe(200);
    expect(await level(sku)).toMatchObject({ onHand: 10, reserved: 0 });
    const line = (await office('GET', `/v1/stock-counts/${id}`)).body.lines[0];
    expect(line).toMatchObject({ heldByOpenPayments: 2, goneSinceCount: 2, adjustment: -2, writeOff: 2 });
    expect((await office('POST', `/v1/stock-counts/${id}/approve`, {})).body).toMatchObject({
      adjustments: 1,
      totals: { shrinkageUnits: 2 },
    });
    expect(await level(sku)).toMatchObject({ onHand: 8, reserved: 0 });
  });

  it('still unknown at approval: nothing is written off, the 2 stay held; the later approval sells them once', async () => {
    const { sku, payment } = await tenWithTwoOnAnUnknownCard();
    const id = await countShelf(sku, 7); // one more is simply missing
    expect((await office('POST', `/v1/stock-counts/${id}/approve`, {})).body).toMatchObject({
      adjustments: 1,
      totals: { shrinkageUnits: 1, heldUnits: 2 },
    });
    expect(await level(sku)).toMatchObject({ onHand: 9, reserved: 2 });
    await office('POST', `/v1/payments/${payment}/resolve`, { outcome: 'approved', note: 'charged' });
    expect(await level(sku)).toMatchObject({ onHand: 7, reserved: 0 });
  });

  it('goods in a cart at the till when counted, then put back: no write-off', async () => {
    const sku = `W${name}${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen: 100 });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 10 }] });
    const o = (await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 2 }] })).body;
    const id = await countShelf(sku, 8); // 2 were in the cart, not on the shelf
    expect((await till('POST', `/v1/orders/${o.id}/cancel`)).status).toBe(200); // back on the shelf
    expect((await office('POST', `/v1/stock-counts/${id}/approve`, {})).body).toMatchObject({ adjustments: 0 });
    expect(await level(sku)).toMatchObject({ onHand: 10, reserved: 0 });
  });
});
