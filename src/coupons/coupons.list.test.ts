/**
 * GET /v1/coupons on both databases: a strict, server-paged list in code order, each coupon with
 * its used/remaining as the guarded counters say.
 */
import { testDbKinds } from '../../test/support/dbs';
import { Api, startTestApp, TestApp } from '../../test/support/app';

describe.each(testDbKinds())('coupon list on $name', ({ name }) => {
  let t: TestApp;
  let office: Api;
  let cashier: Api;

  beforeAll(async () => {
    t = await startTestApp(name);
    office = await t.as('backoffice');
    cashier = await t.as('cashier');
    for (const code of ['L-C', 'L-A', 'L-B']) {
      expect(
        (await office('PUT', `/v1/coupons/${code}`, { kind: 'amount_off', amountFen: 300, maxUses: 5 })).status,
      ).toBe(200);
    }
    expect((await office('PUT', '/v1/coupons/L-D', { kind: 'percent_off', percent: 12.5 })).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  it('pages through every coupon in code order with used and remaining', async () => {
    const first = await office('GET', '/v1/coupons?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.coupons.map((c: { code: string }) => c.code)).toEqual(['L-A', 'L-B']);
    expect(first.body.coupons[0]).toMatchObject({
      kind: 'amount_off',
      amountFen: 300,
      maxUses: 5,
      used: 0,
      reserved: 0,
      remaining: 5,
    });
    expect(first.body.next).toBe('L-B');
    const second = await office('GET', `/v1/coupons?limit=2&cursor=${first.body.next}`);
    expect(second.body.coupons.map((c: { code: string }) => c.code)).toEqual(['L-C', 'L-D']);
    expect(second.body.coupons[1]).toMatchObject({
      kind: 'percent_off',
      percent: 12.5,
      maxUses: null,
      remaining: null,
    });
    const last = await office('GET', `/v1/coupons?limit=2&cursor=L-D`);
    expect(last.body).toEqual({ coupons: [], next: null });
  });

  it('refuses unknown parameters and bad limits with a 400, and cashiers with a 403', async () => {
    for (const q of ['?page=2', '?limit=0', '?limit=201', '?limit=x', '?cursor=%20bad']) {
      const r = await office('GET', `/v1/coupons${q}`);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
    }
    expect((await cashier('GET', '/v1/coupons')).status).toBe(403);
  });

  it('an edit through PUT shows in the list (the form re-saves the whole coupon)', async () => {
    expect(
      (await office('PUT', '/v1/coupons/L-A', { kind: 'amount_off', amountFen: 450, maxUses: 9, minSubtotalFen: 1000 }))
        .status,
    ).toBe(200);
    const r = await office('GET', '/v1/coupons?limit=1');
    expect(r.body.coupons[0]).toMatchObject({
      code: 'L-A',
      amountFen: 450,
      maxUses: 9,
      minSubtotalFen: 1000,
      remaining: 9,
    });
  });
});
