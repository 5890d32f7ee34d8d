/**
 * Coupons, discounts, returns and refund legs through the HTTP API on both databases. Card legs here
 * go through the real driver and the terminal simulator joined in-process; test/terminal/returns.e2e.test.ts
 * runs them over a pty with the simulator as its own process. Every scenario ends with pos check.
 */
import { createSimulatedTerminal, SimulatedTerminal } from '../../src/terminal/in-process';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { exec, rows } from '../../src/db/db';
import { testDbKinds } from '../support/dbs';
import fc from 'fast-check';
import { Api, startTestApp, TestApp } from '../support/app';
import { simulatedAcquirer } from '../support/acquirer';
import { Clock } from '../../src/shared/clock';

/** Real time plus an offset, so holds can expire without waiting. */
class ShiftedClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

const T_RESP = 700;

describe.each(testDbKinds())('returns, refunds and coupons on $name', ({ name }) => {
  let t: TestApp;
  let lane: SimulatedTerminal;
  let cashier: Api;
  let office: Api;
  const bank = new MemorySimBank();
  const clock = new ShiftedClock();
  let acq: Awaited<ReturnType<typeof simulatedAcquirer>>;

  beforeAll(async () => {
    lane = await createSimulatedTerminal('lane-1', { bank, tRespMs: T_RESP, tAckMs: 150 });
    acq = await simulatedAcquirer(clock);
    t = await startTestApp(name, {
      terminals: new Map([['lane-1', lane.terminal]]),
      acquirer: acq.acquirer,
      clock,
      config: { terminalTRespMs: T_RESP, reversalGraceSeconds: 3600, cashRounding: 'jiao' },
      poolSize: 20,
    });
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
    await lane?.close();
    await acq?.sim.close();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function sku(priceFen: number, stock = 50): Promise<string> {
    const code = `RET-${name}-${++seq}`;
    expect((await office('PUT', `/v1/skus/${code}`, { name: code, priceFen })).status).toBe(200);
    expect((await office('POST', '/v1/stock/receipts', { lines: [{ sku: code, qty: stock }] })).status).toBe(201);
    return code;
  }
  async function coupon(body: object): Promise<string> {
    const code = `C${name}${++seq}`;
    const r = await office('PUT', `/v1/coupons/${code}`, body);
    expect(r.status).toBe(200);
    return code;
  }
  async function order(
    lines: { sku: string; qty: number; unitPriceFen?: number }[],
    couponCode?: string,
    as: Api = cashier,
  ) {
    const r = await as('POST', '/v1/orders', { lane: 'lane-1', lines, ...(couponCode ? { coupon: couponCode } : {}) });
    expect(r.status).toBe(201);
    return r.body;
  }
  async function payCash(orderId: string, amountFen: number) {
    const r = await cashier('POST', `/v1/orders/${orderId}/payments`, { method: 'cash', amountFen, lane: 'lane-1' });
    expect(r.status).toBe(201);
    return r.body;
  }
  async function payCard(orderId: string, amountFen: number) {
    lane.simulator.expect({ action: 'approve' });
    const r = await cashier('POST', `/v1/orders/${orderId}/payments`, { method: 'card', amountFen, lane: 'lane-1' });
    expect(r.status).toBe(202);
    const p = (await cashier('GET', `/v1/payments/${r.body.id}?wait=10`)).body;
    expect(p.status).toBe('approved');
    return p;
  }
  const ret = (orderId: string, body: object) => cashier('POST', `/v1/orders/${orderId}/returns`, body);
  const getOrder = async (id: string) => (await cashier('GET', `/v1/orders/${id}`)).body;
  const stock = async (code: string) => (await cashier('GET', `/v1/stock/${code}`)).body;

  describe('coupons', () => {
    it('PUT/GET a coupon answers used and remaining', async () => {
      const code = await coupon({ kind: 'amount_off', amountFen: 500, maxUses: 3 });
      const r = await cashier('GET', `/v1/coupons/${code}`);
      expect(r.body).toMatchObject({ code, kind: 'amount_off', amountFen: 500, maxUses: 3, used: 0, remaining: 3 });
    });

    it('a cashier cannot define coupons', async () => {
      expect((await cashier('PUT', '/v1/coupons/NOPE', { kind: 'amount_off', amountFen: 1 })).status).toBe(403);
    });

    it('line discounts are whole fen, split by largest remainder with ties to the lower line, and sum to the order discount', async () => {
      const a = await sku(100),
        b = await sku(100),
        c = await sku(100);
      const code = await coupon({ kind: 'amount_off', amountFen: 100 });
      const o = await order(
        [
          { sku: a, qty: 1 },
          { sku: b, qty: 1 },
          { sku: c, qty: 1 },
        ],
        code,
      );
      expect(o).toMatchObject({ subtotalFen: 300, discountFen: 100, totalFen: 200, coupon: code });
      expect(o.lines.map((l: any) => [l.discountFen, l.netFen])).toEqual([
        [34, 66],
        [33, 67],
        [33, 67],
      ]);
    });

    it('only eligible SKUs share the discount; a percent coupon is rounded once at order level, half up', async () => {
      const a = await sku(2750),
        b = await sku(999);
      const code = await coupon({ kind: 'percent_off', percent: 15, skus: [a] });
      const o = await order(
        [
          { sku: a, qty: 3 },
          { sku: b, qty: 1 },
        ],
        code,
      );
      expect(o.discountFen).toBe(1238); // 15 % of 82.50 = 12.375 → 12.38
      expect(o.lines[1]).toMatchObject({ discountFen: 0, netFen: 999 });
      expect(o.totalFen).toBe(8250 - 1238 + 999);
    });

    it.each([
      ['unknown_coupon', 422, async () => 'NO-SUCH-COUPON'],
      [
        'coupon_not_applicable',
        422,
        async () => coupon({ kind: 'amount_off', amountFen: 100, minSubtotalFen: 1_000_000 }),
      ],
      [
        'coupon_not_applicable',
        422,
        async () => coupon({ kind: 'amount_off', amountFen: 100, validTo: '2000-01-01T00:00:00Z' }),
      ],
      [
        'coupon_not_applicable',
        422,
        async () => coupon({ kind: 'amount_off', amountFen: 100, skus: ['SOMETHING-ELSE'] }),
      ],
      ['coupon_exhausted', 409, async () => coupon({ kind: 'amount_off', amountFen: 100, maxUses: 0 })],
    ])('refused with %s (%d), nothing reserved', async (errCode, status, make) => {
      const a = await sku(500);
      const code = await make();
      const r = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: a, qty: 1 }], coupon: code });
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(errCode);
      if (errCode === 'coupon_not_applicable')
        expect(['minimum', 'window', 'no_eligible_line']).toContain(r.body.error.details.why);
      expect(await stock(a)).toMatchObject({ reserved: 0 });
    });

    it('500 concurrent orders for a coupon with 20 uses: exactly 20 get it', async () => {
      const a = await sku(1000, 1000);
      const code = await coupon({ kind: 'amount_off', amountFen: 100, maxUses: 20 });
      const results = await Promise.all(
        Array.from({ length: 500 }, () =>
          cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: a, qty: 1 }], coupon: code }),
        ),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(20);
      expect(results.filter((r) => r.status === 409 && r.body.error.code === 'coupon_exhausted')).toHaveLength(480);
      expect((await cashier('GET', `/v1/coupons/${code}`)).body).toMatchObject({ reserved: 20, used: 0, remaining: 0 });
      expect(await stock(a)).toMatchObject({ reserved: 20 });
    });

    it('a use held by an order that expires unpaid goes back to the coupon', async () => {
      const a = await sku(1000);
      const code = await coupon({ kind: 'amount_off', amountFen: 100, maxUses: 1 });
      const o = await order([{ sku: a, qty: 1 }], code);
      expect(
        (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: a, qty: 1 }], coupon: code })).status,
      ).toBe(409);
      clock.offsetMs = 2 * 3600_000;
      try {
        expect((await t.api('POST', '/v1/sweeps')).status).toBe(200);
      } finally {
        clock.offsetMs = 0;
      }
      expect((await getOrder(o.id)).status).toBe('expired');
      expect((await cashier('GET', `/v1/coupons/${code}`)).body).toMatchObject({ reserved: 0, used: 0, remaining: 1 });
    });

    it('a use is consumed when the order is paid and given back when another is cancelled', async () => {
      const a = await sku(1000);
      const code = await coupon({ kind: 'amount_off', amountFen: 100, maxUses: 2 });
      const o1 = await order([{ sku: a, qty: 1 }], code);
      const o2 = await order([{ sku: a, qty: 1 }], code);
      await payCash(o1.id, o1.totalFen);
      expect((await cashier('POST', `/v1/orders/${o2.id}/cancel`)).status).toBe(200);
      expect((await cashier('GET', `/v1/coupons/${code}`)).body).toMatchObject({ used: 1, reserved: 0, remaining: 1 });
    });
  });

  describe('price override', () => {
    it('a cashier may not override a price', async () => {
      const a = await sku(1000);
      const r = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: a, qty: 1, unitPriceFen: 1 }] });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('price_override_forbidden');
    });

    it('a supervisor overrides it, audited with before and after', async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 2, unitPriceFen: 800 }], undefined, office);
      expect(o.lines[0]).toMatchObject({ unitPriceFen: 800, listPriceFen: 1000, amountFen: 1600 });
      const audits = await t.fdb.db.ds.query(
        "SELECT `before`, `after` FROM audit_log WHERE action = 'price_override' AND entity = 'order_line'",
      );
      expect(
        audits.map((x: any) => [JSON.parse(x.before).unitPriceFen, JSON.parse(x.after).unitPriceFen]),
      ).toContainEqual([1000, 800]);
    });
  });

  describe('returns', () => {
    it("a partial return refunds the units' share of the net, restocks them, and shows on the order", async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 3 }]);
      await payCash(o.id, o.totalFen);
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }], reason: 'wrong size' });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({
        orderId: o.id,
        status: 'refunded',
        refundFen: 1000,
        lines: [{ lineNo: 1, qty: 1, refundFen: 1000 }],
      });
      expect(r.body.legs).toEqual([
        expect.objectContaining({ method: 'cash', via: 'cash', amountFen: 1000, status: 'approved' }),
      ]);
      expect(await stock(a)).toMatchObject({ onHand: 48, reserved: 0 });
      const v = await getOrder(o.id);
      expect(v).toMatchObject({ refundedFen: 1000, lines: [expect.objectContaining({ returnedQty: 1 })] });
      expect(v.returns).toHaveLength(1);
      expect((await cashier('GET', `/v1/returns/${r.body.id}`)).body).toMatchObject({ id: r.body.id, refundFen: 1000 });
    });

    it('restock:false records the units as damaged: on hand does not rise', async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCash(o.id, o.totalFen);
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 2 }], restock: false })).status).toBe(201);
      expect(await stock(a)).toMatchObject({ onHand: 48 });
      const mv = await t.fdb.db.ds.query('SELECT kind, on_hand_delta FROM stock_movement WHERE sku = ? AND kind = ?', [
        a,
        'damaged',
      ]);
      expect(mv).toHaveLength(1);
      expect(Number(mv[0].on_hand_delta)).toBe(0);
    });

    it('more than sold minus returned is 409 return_exceeds_sold and changes nothing', async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCash(o.id, o.totalFen);
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })).status).toBe(201);
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 2 }] });
      expect(r.status).toBe(409);
      expect(r.body.error).toMatchObject({
        code: 'return_exceeds_sold',
        details: { soldQty: 2, returnedQty: 1, requestedQty: 2 },
      });
      expect((await getOrder(o.id)).refundedFen).toBe(1000);
    });

    it('a return of an unpaid order is refused', async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 1 }]);
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('order_not_returnable');
    });

    it('concurrent returns of the same units: one wins', async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 1 }]);
      await payCash(o.id, o.totalFen);
      const rs = await Promise.all(Array.from({ length: 8 }, () => ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })));
      expect(rs.filter((r) => r.status === 201)).toHaveLength(1);
      expect(rs.filter((r) => r.status === 409 && r.body.error.code === 'return_exceeds_sold')).toHaveLength(7);
      expect((await getOrder(o.id)).refundedFen).toBe(1000);
    });

    it('a return sent twice with the same Idempotency-Key is made once', async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCash(o.id, o.totalFen);
      const key = { 'idempotency-key': `ret-${o.id}` };
      const first = await cashier('POST', `/v1/orders/${o.id}/returns`, { lines: [{ lineNo: 1, qty: 1 }] }, key);
      const again = await cashier('POST', `/v1/orders/${o.id}/returns`, { lines: [{ lineNo: 1, qty: 1 }] }, key);
      expect(first.status).toBe(201);
      expect(again.body.id).toBe(first.body.id);
      expect(await getOrder(o.id)).toMatchObject({
        refundedFen: 1000,
        lines: [expect.objectContaining({ returnedQty: 1 })],
      });
    });

    it('bad input is a 400 and changes nothing', async () => {
      const a = await sku(1000);
      const o = await order([{ sku: a, qty: 1 }]);
      await payCash(o.id, o.totalFen);
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 0 }] })).status).toBe(400);
      expect((await ret(o.id, { lines: [{ lineNo: 9, qty: 1 }] })).status).toBe(422);
      expect((await getOrder(o.id)).refundedFen).toBe(0);
    });
  });

  describe('peer bugs, in our terms', () => {
    it("Odoo PR #286433: a partial return gives back only its line's share of the order discount, not all of it", async () => {
      const a = await sku(10000),
        b = await sku(5000);
      const code = await coupon({ kind: 'amount_off', amountFen: 3000 });
      const o = await order(
        [
          { sku: a, qty: 1 },
          { sku: b, qty: 1 },
        ],
        code,
      );
      await payCash(o.id, o.totalFen);
      expect((await ret(o.id, { lines: [{ lineNo: 2, qty: 1 }] })).body.refundFen).toBe(4000);
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })).body.refundFen).toBe(8000);
      expect((await getOrder(o.id)).refundedFen).toBe(12000);
    });

    it('Odoo PR #281958: an 80 − 15 order refunds 65, not 95', async () => {
      const a = await sku(8000);
      const code = await coupon({ kind: 'amount_off', amountFen: 1500 });
      const o = await order([{ sku: a, qty: 1 }], code);
      await payCash(o.id, o.totalFen);
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })).body.refundFen).toBe(6500);
    });

    it('PrestaShop PR #42502: returning one of two items takes only its half of the discount', async () => {
      const a = await sku(5000);
      const code = await coupon({ kind: 'amount_off', amountFen: 2000 });
      const o = await order([{ sku: a, qty: 2 }], code);
      await payCash(o.id, o.totalFen);
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })).body.refundFen).toBe(4000);
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })).body.refundFen).toBe(4000);
    });

    it('ERPNext #41343: 82.50 − 15 % is rounded once; returning it in parts gives back exactly what was paid', async () => {
      const a = await sku(2750);
      const code = await coupon({ kind: 'percent_off', percent: 15 });
      const o = await order([{ sku: a, qty: 3 }], code);
      expect(o.totalFen).toBe(7012);
      await payCash(o.id, o.totalFen);
      const r1 = (await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })).body.refundFen;
      const r2 = (await ret(o.id, { lines: [{ lineNo: 1, qty: 2 }] })).body.refundFen;
      expect([r1, r2]).toEqual([2338, 4674]);
      expect(r1 + r2).toBe(7012);
    });

    it('Odoo PR #155619: card + cash paid 138, a full return refunds 138 to the two tenders, newest first', async () => {
      const a = await sku(13800);
      const o = await order([{ sku: a, qty: 1 }]);
      await payCard(o.id, 10000);
      await payCash(o.id, 3800);
      lane.simulator.expect({ action: 'approve' });
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      expect(r.body).toMatchObject({ refundFen: 13800, status: 'refunded' });
      expect(r.body.legs.map((l: any) => [l.method, l.amountFen, l.status])).toEqual([
        ['cash', 3800, 'approved'],
        ['card', 10000, 'approved'],
      ]);
      // Part of the card's amount in the open batch is an R0 refund, the whole would be a V0 void.
    });

    it('Odoo #96721: a cash sale rounded down to 7.00 (抹零) refunds 7.00, not 7.03', async () => {
      const a = await sku(703);
      const o = await order([{ sku: a, qty: 1 }]);
      await payCash(o.id, 700);
      const v = await getOrder(o.id);
      expect(v).toMatchObject({ status: 'paid', roundingFen: 3, paidFen: 700 });
      expect((await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] })).body.refundFen).toBe(700);
    });
  });

  describe('property, through the API', () => {
    it('any basket, any coupon, any partial returns: refunds never exceed what was paid and equal it when all comes back', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ priceFen: fc.integer({ min: 1, max: 50_000 }), qty: fc.integer({ min: 1, max: 6 }) }), {
            minLength: 1,
            maxLength: 4,
          }),
          fc.oneof(
            fc.record({ kind: fc.constant('amount_off'), amountFen: fc.integer({ min: 1, max: 200_000 }) }),
            fc.record({
              kind: fc.constant('percent_off'),
              percent: fc.integer({ min: 1, max: 10_000 }).map((x) => x / 100),
            }),
          ),
          fc.array(fc.record({ line: fc.nat(), qty: fc.integer({ min: 1, max: 6 }) }), { maxLength: 6 }),
          fc.boolean(),
          async (items, c, returns, roundCash) => {
            const codes = await Promise.all(items.map((it) => sku(it.priceFen, 10)));
            const code = await coupon(c);
            const o = await order(
              codes.map((s, i) => ({ sku: s, qty: items[i].qty })),
              code,
            );
            expect(o.lines.reduce((s: number, l: any) => s + l.discountFen, 0)).toBe(o.discountFen);
            const pay = roundCash ? o.totalFen - (o.totalFen % 10) : o.totalFen;
            if (pay > 0) await payCash(o.id, pay);
            if ((await getOrder(o.id)).status !== 'paid') return; // a zero total has nothing to pay
            const left = o.lines.map((l: any) => l.qty);
            let refunded = 0;
            for (const r of returns) {
              const i = r.line % left.length;
              const q = Math.min(r.qty, left[i]);
              if (q === 0) continue;
              const res = await ret(o.id, { lines: [{ lineNo: i + 1, qty: q }] });
              expect(res.status).toBe(201);
              left[i] -= q;
              refunded += res.body.refundFen;
              expect(refunded).toBeLessThanOrEqual(pay);
            }
            const rest = left.map((q: number, i: number) => ({ lineNo: i + 1, qty: q })).filter((l: any) => l.qty > 0);
            if (rest.length) refunded += (await ret(o.id, { lines: rest })).body.refundFen;
            expect(refunded).toBe(pay);
            const v = await getOrder(o.id);
            expect(v.refundedFen).toBe(pay);
            expect(v.returns.flatMap((x: any) => x.legs).reduce((s: number, l: any) => s + l.amountFen, 0)).toBe(pay);
          },
        ),
        { numRuns: 12 },
      );
    });
  });

  describe('card legs and cancel', () => {
    it('the whole card amount in the open batch is voided (V0); the terminal journal marks the sale voided', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 1 }]);
      const p = await payCard(o.id, o.totalFen);
      lane.simulator.expect({ action: 'approve' });
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      expect(r.body.legs).toEqual([
        expect.objectContaining({ method: 'card', via: 'V0', status: 'approved', amountFen: 2500 }),
      ]);
      expect(r.body.legs[0].rf).not.toBe(p.rf);
      expect(lane.simulator.journal.get(p.rf)!.status).toBe('V');
    });

    it('a part of the card amount is refunded (R0) under its own RF', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 2 }]);
      const p = await payCard(o.id, o.totalFen);
      lane.simulator.expect({ action: 'approve' });
      // Keyed: the answer committed with the return (leg queued) is refreshed once the leg is refunded.
      const key = `ret-${o.id}`;
      const body = { lines: [{ lineNo: 1, qty: 1 }] };
      const r = await cashier('POST', `/v1/orders/${o.id}/returns`, body, { 'idempotency-key': key });
      expect(r.status).toBe(201);
      expect(r.body.legs).toEqual([expect.objectContaining({ via: 'R0', status: 'approved', amountFen: 2500 })]);
      expect(lane.simulator.journal.get(r.body.legs[0].rf)).toMatchObject({ mt: 'R0', status: 'A', amountFen: 2500 });
      expect(lane.simulator.journal.get(p.rf)!.status).toBe('A');
      const again = await cashier('POST', `/v1/orders/${o.id}/returns`, body, { 'idempotency-key': key });
      expect(again.headers.get('idempotent-replay')).toBe('true');
      expect(again.body).toEqual(r.body);
    });

    it('a declined leg is failed and listed; paying it in cash is audited', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCard(o.id, o.totalFen);
      lane.simulator.expect({ action: 'decline', rc: '51' });
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      expect(r.body).toMatchObject({
        status: 'needs_attention',
        legs: [expect.objectContaining({ status: 'failed', rc: '51' })],
      });
      const leg = r.body.legs[0];
      expect((await office('GET', '/v1/refund-legs')).body.map((l: any) => l.id)).toContain(leg.id);
      expect((await cashier('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/cash`, {})).status).toBe(400);
      const otherLane = await t.as('cashier', 'lane-2');
      expect(
        (await otherLane('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/cash`, { note: 'not my drawer' })).status,
      ).toBe(403);
      const paid = await cashier('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/cash`, {
        note: 'paid 25.00 from drawer 1',
      });
      expect(paid.status).toBe(200);
      expect(paid.body).toMatchObject({
        status: 'refunded',
        legs: [
          expect.objectContaining({
            status: 'paid_in_cash',
            resolution: expect.objectContaining({ note: 'paid 25.00 from drawer 1' }),
          }),
        ],
      });
      expect((await cashier('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/cash`, { note: 'again' })).status).toBe(
        409,
      );
    });

    it('cancelling a part-paid order releases its stock and refunds each approved tender', async () => {
      const a = await sku(3000);
      const code = await coupon({ kind: 'amount_off', amountFen: 100, maxUses: 5 });
      const o = await order([{ sku: a, qty: 2 }], code);
      await payCash(o.id, 1000);
      await payCard(o.id, 2000);
      lane.simulator.expect({ action: 'approve' });
      const c = await cashier('POST', `/v1/orders/${o.id}/cancel`);
      expect(c.status).toBe(200);
      expect(c.body).toMatchObject({ status: 'cancelled', refundedFen: 3000 });
      expect(c.body.returns[0]).toMatchObject({ kind: 'cancel', refundFen: 3000, status: 'refunded' });
      expect(c.body.returns[0].legs.map((l: any) => [l.method, l.via, l.amountFen])).toEqual([
        ['card', 'V0', 2000],
        ['cash', 'cash', 1000],
      ]);
      expect(await stock(a)).toMatchObject({ onHand: 50, reserved: 0 });
      expect((await cashier('GET', `/v1/coupons/${code}`)).body).toMatchObject({ reserved: 0, used: 0 });
    });

    it('a card leg for a busy terminal is stored queued with its RF; the sweep sends it once the terminal is free', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 1 }]);
      const p = await payCard(o.id, o.totalFen);
      const other = await order([{ sku: a, qty: 1 }]);
      lane.simulator.expect({ action: 'approve', delayMs: 600 });
      lane.simulator.expect({ action: 'approve' });
      const busy = await cashier('POST', `/v1/orders/${other.id}/payments`, {
        method: 'card',
        amountFen: other.totalFen,
        lane: 'lane-1',
      });
      // Busy for as long as the return is made, whatever the machine's speed.
      const isIdle = lane.terminal.isIdle.bind(lane.terminal);
      lane.terminal.isIdle = () => false;
      let r;
      try {
        r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      } finally {
        lane.terminal.isIdle = isIdle;
      }
      expect(r.body).toMatchObject({
        status: 'refunding',
        legs: [expect.objectContaining({ via: 'V0', status: 'queued' })],
      });
      const rf = r.body.legs[0].rf;
      expect(rf).toMatch(/^R/);
      await cashier('GET', `/v1/payments/${busy.body.id}?wait=10`);
      expect((await t.api('POST', '/v1/sweeps')).body.steps).toMatchObject({ refundLegs: 0 });
      const v = (await cashier('GET', `/v1/returns/${r.body.id}`)).body;
      expect(v).toMatchObject({ status: 'refunded', legs: [expect.objectContaining({ status: 'approved', rf })] });
      expect(lane.simulator.journal.get(rf)).toMatchObject({ mt: 'V0', status: 'A' });
      expect(p.rf).not.toBe(rf);
    });

    it('a committed return is answered as it stands when its legs cannot be sent now; no second return on a retry', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCard(o.id, o.totalFen);
      // The driver fails before the terminal is reached (after the return has committed).
      const isConnected = lane.terminal.isConnected.bind(lane.terminal);
      lane.terminal.isConnected = () => {
        throw new Error('the serial port vanished');
      };
      let r;
      try {
        r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      } finally {
        lane.terminal.isConnected = isConnected;
      }
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({
        status: 'refunding',
        refundFen: 2500,
        legs: [expect.objectContaining({ method: 'card', status: 'queued' })],
      });
      // The sweep sends the leg; the order shows one return, not two.
      lane.simulator.expect({ action: 'approve' });
      await t.api('POST', '/v1/sweeps');
      expect((await cashier('GET', `/v1/returns/${r.body.id}`)).body).toMatchObject({
        status: 'refunded',
        legs: [expect.objectContaining({ status: 'approved' })],
      });
      expect((await cashier('GET', `/v1/orders/${o.id}`)).body.returns).toHaveLength(1);
    });

    /** A card sale of 25.00 returned while the lane's terminal is away: its refund leg waits, queued. */
    async function returnWithLegQueued() {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 1 }]);
      await payCard(o.id, o.totalFen);
      const isConnected = lane.terminal.isConnected.bind(lane.terminal);
      lane.terminal.isConnected = () => false;
      let r;
      try {
        r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      } finally {
        lane.terminal.isConnected = isConnected;
      }
      const leg = r.body.legs[0];
      expect(leg.status).toBe('queued');
      return { r, leg };
    }

    it('a leg left pending by a crash before its ACK was recorded is not failed for cash on the terminal journal’s N alone', async () => {
      const { r, leg } = await returnWithLegQueued();
      // What a kill -9 leaves after the terminal took the refund but before its ACK was recorded.
      await t.app.db.tx((m) =>
        exec(m, "UPDATE refund_leg SET status = 'pending', acked = 0, updated_at = ? WHERE id = ?", [
          Date.now() - 3_600_000,
          leg.id,
        ]),
      );
      expect((await t.api('POST', '/v1/sweeps')).status).toBe(200);
      const v = (await cashier('GET', `/v1/returns/${r.body.id}`)).body;
      expect(v.legs[0]).toMatchObject({ id: leg.id, status: 'unknown' });
    });

    it('a leg left pending on a lane no live instance drives becomes unknown (acked), for the acquirer to settle', async () => {
      const { leg } = await returnWithLegQueued();
      // As a crash leaves it on a lane whose instance is gone with its lease (no instance has it configured now).
      await t.app.db.tx((m) =>
        exec(
          m,
          "UPDATE refund_leg SET status = 'pending', acked = 0, lane = 'lane-gone', updated_at = ? WHERE id = ?",
          [Date.now() - 3_600_000, leg.id],
        ),
      );
      expect((await t.api('POST', '/v1/sweeps')).status).toBe(200);
      const [row] = await rows<{ status: string; acked: unknown }>(
        t.fdb.db.ds.manager,
        'SELECT status, acked FROM refund_leg WHERE id = ?',
        [leg.id],
      );
      // Before: it stayed pending for good, with no owner and no way out.
      expect(row.status).toBe('unknown');
      expect(Number(row.acked)).toBe(1);
    });

    it('a queued leg whose terminal is away for good is failed by a person and paid in cash; never approved by hand', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 1 }]);
      await payCard(o.id, o.totalFen);
      const isConnected = lane.terminal.isConnected.bind(lane.terminal);
      lane.terminal.isConnected = () => false;
      try {
        const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
        const leg = r.body.legs[0];
        expect(leg.status).toBe('queued');
        const resolve = (outcome: string) =>
          office('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/resolve`, {
            outcome,
            note: 'lane 1 terminal retired',
          });
        const approved = await resolve('approved');
        expect(approved.status).toBe(409);
        expect(approved.body.error.code).toBe('leg_not_unknown');
        const failed = await resolve('failed');
        expect(failed.status).toBe(200);
        expect(failed.body.legs[0]).toMatchObject({ id: leg.id, status: 'failed' });
        const paid = await cashier('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/cash`, { note: 'paid 25.00' });
        expect(paid.status).toBe(200);
        expect(paid.body).toMatchObject({
          status: 'refunded',
          legs: [expect.objectContaining({ status: 'paid_in_cash' })],
        });
      } finally {
        lane.terminal.isConnected = isConnected;
      }
    });

    it('98 on a refund: the leg is unknown; the sweep signs in to flush the reversal, Q0 says R, the leg failed for cash', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCard(o.id, o.totalFen);
      lane.simulator.expect({ action: '98' });
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      expect(r.body.legs).toEqual([expect.objectContaining({ via: 'R0', status: 'unknown', rc: '98' })]);
      await new Promise((res) => setTimeout(res, 1100));
      expect((await t.api('POST', '/v1/sweeps')).body.steps).toMatchObject({ refundLegs: 1 });
      const v = (await cashier('GET', `/v1/returns/${r.body.id}`)).body;
      expect(v).toMatchObject({
        status: 'needs_attention',
        legs: [expect.objectContaining({ status: 'failed', rf: r.body.legs[0].rf })],
      });
      expect(lane.simulator.journal.get(r.body.legs[0].rf)!.status).toBe('R');
    });

    it('an unknown leg nobody can tell about is resolved by a supervisor, audited; a failed outcome is then paid in cash', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCard(o.id, o.totalFen);
      lane.simulator.expect({ action: 'silence', bank: 'none' });
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      const leg = r.body.legs[0];
      expect(leg.status).toBe('unknown');
      const path = `/v1/returns/${r.body.id}/legs/${leg.id}/resolve`;
      expect((await cashier('POST', path, { outcome: 'failed', note: 'x' })).status).toBe(403);
      const done = await office('POST', path, { outcome: 'failed', note: 'not on the acquirer file of the 26th' });
      expect(done.body).toMatchObject({
        status: 'needs_attention',
        legs: [
          expect.objectContaining({
            status: 'failed',
            resolution: expect.objectContaining({ note: 'not on the acquirer file of the 26th' }),
          }),
        ],
      });
      expect((await office('POST', path, { outcome: 'approved', note: 'again' })).status).toBe(409);
      expect(
        (await cashier('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/cash`, { note: 'paid from drawer' })).body
          .status,
      ).toBe('refunded');
    });

    it('a leg left pending by a restart becomes unknown and is settled by Q0 on its RF, not sent again', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCard(o.id, o.totalFen);
      lane.simulator.expect({ action: 'approve' });
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      const leg = r.body.legs[0];
      expect(leg.status).toBe('approved');
      // As if the service died after the terminal approved and before the outcome was written.
      await t.fdb.db.ds.query(
        "UPDATE refund_leg SET status = 'pending', finished_at = NULL, updated_at = updated_at - 60000 WHERE id = ?",
        [leg.id],
      );
      const requests = lane.simulator.listenerCount('request');
      let sent = 0;
      const count = (m: { MT: string }) => {
        if (m.MT === 'R0' || m.MT === 'V0') sent++;
      };
      lane.simulator.on('request', count);
      try {
        expect((await t.api('POST', '/v1/sweeps')).body.steps).toMatchObject({ refundLegs: 1 });
      } finally {
        lane.simulator.off('request', count);
      }
      expect(lane.simulator.listenerCount('request')).toBe(requests);
      expect(sent).toBe(0);
      expect((await cashier('GET', `/v1/returns/${r.body.id}`)).body.legs).toEqual([
        expect.objectContaining({ status: 'approved', rf: leg.rf }),
      ]);
    });

    it('cancel is still refused while a card attempt is live', async () => {
      const a = await sku(3000);
      const o = await order([{ sku: a, qty: 1 }]);
      lane.simulator.expect({ action: 'silence', bank: 'none' });
      const r = await cashier('POST', `/v1/orders/${o.id}/payments`, {
        method: 'card',
        amountFen: 3000,
        lane: 'lane-1',
      });
      const c = await cashier('POST', `/v1/orders/${o.id}/cancel`);
      expect(c.status).toBe(409);
      expect(c.body.error.code).toBe('payment_in_progress');
      await cashier('GET', `/v1/payments/${r.body.id}?wait=5`);
    });
  });

  describe('when the terminal is gone', () => {
    it('an unknown leg is settled through the acquirer by its own RF', async () => {
      const a = await sku(2500);
      const o = await order([{ sku: a, qty: 2 }]);
      await payCard(o.id, o.totalFen);
      lane.simulator.expect({ action: 'silence', bank: 'none' });
      const r = await ret(o.id, { lines: [{ lineNo: 1, qty: 1 }] });
      const leg = r.body.legs[0];
      expect(leg).toMatchObject({ via: 'R0', status: 'unknown' });
      const row = (await t.fdb.db.ds.query('SELECT txn_time FROM refund_leg WHERE id = ?', [leg.id]))[0];
      // The bank did refund it; the terminal that could say so is unplugged.
      await acq.bank.record({
        orderId: leg.rf,
        amountFen: 2500,
        status: 'approved',
        txnTime: row.txn_time,
        respCode: '00',
      });
      await lane.terminal.close();
      await new Promise((res) => setTimeout(res, 1100));
      expect((await t.api('POST', '/v1/sweeps')).body.steps).toMatchObject({ refundLegs: 1 });
      expect((await cashier('GET', `/v1/returns/${r.body.id}`)).body).toMatchObject({
        status: 'refunded',
        legs: [expect.objectContaining({ status: 'approved', rf: leg.rf })],
      });
    });
  });
});
