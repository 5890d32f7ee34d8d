import { rows } from '../../src/db/db';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { ManualClock } from '../../src/shared/clock';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';

describe.each(testDbKinds())('stock counts on $name', ({ name }) => {
  let t: TestApp;
  let office: Api;
  let till: Api;
  const clock = new ManualClock(new Date('2026-11-25T02:00:00Z'));

  beforeAll(async () => {
    const lane = new SilentTerminal('lane-1', new MemorySimBank(), clock);
    t = await startTestApp(name, { clock, poolSize: 30, terminals: new Map([['lane-1', lane]]) });
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
  async function skus(n: number, qty: number, priceFen = 200): Promise<string[]> {
    const batch = `C${name}${++seq}`;
    const list = Array.from({ length: n }, (_, i) => `${batch}-${i}`);
    for (const sku of list) await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen });
    await office('POST', '/v1/stock/receipts', { lines: list.map((sku) => ({ sku, qty })) });
    return list;
  }
  const level = async (sku: string) => (await till('GET', `/v1/stock/${sku}`)).body;
  const line = (view: any, sku: string) => view.lines.find((l: any) => l.sku === sku);

  it('counting while the lanes sell: variances are exactly the planted differences, never the sales', async () => {
    const list = await skus(6, 20);
    const count = await office('POST', '/v1/stock-counts', { skus: list });
    expect(count.status).toBe(201);
    expect(count.body).toMatchObject({ status: 'open', skus: 6 });
    const id = count.body.id;

    // Sales, reservations and cancellations race the counters.
    const sell = async (sku: string, qty: number) => {
      const o = (await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty }] })).body;
      expect(
        (await till('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: o.totalFen, lane: 'lane-1' }))
          .status,
      ).toBe(201);
    };
    const reserveAndCancel = async (sku: string) => {
      const o = (await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 2 }] })).body;
      await till('POST', `/v1/orders/${o.id}/cancel`);
    };
    // The physical truth the counters see: 2 missing of list[0], 3 extra of list[1], the rest exact.
    const planted: Record<string, number> = { [list[0]]: -2, [list[1]]: 3 };
    await Promise.all([sell(list[2], 4), sell(list[0], 1), reserveAndCancel(list[3])]);
    // Counted now: shelf = on-hand now + planted difference.
    const counted = await Promise.all(
      list.map(async (sku) => ({ sku, counted: (await level(sku)).onHand + (planted[sku] ?? 0) })),
    );
    const [up1, up2] = await Promise.all([
      office('PUT', `/v1/stock-counts/${id}/lines`, counted.slice(0, 3)),
      office('PUT', `/v1/stock-counts/${id}/lines`, counted.slice(3)),
    ]);
    expect([up1.status, up2.status]).toEqual([200, 200]);
    // More selling after counting, on SKUs that were not counted again: they are flagged, not variance.
    await sell(list[4], 1);

    const view = (await office('GET', `/v1/stock-counts/${id}`)).body;
    expect(line(view, list[0])).toMatchObject({
      variance: -2,
      movedSinceCount: false,
      varianceValueFen: -400,
      writeOff: 2,
    });
    expect(line(view, list[1])).toMatchObject({ variance: 3, movedSinceCount: false, varianceValueFen: 600 });
    expect(line(view, list[2])).toMatchObject({ variance: 0, expected: 16, expectedAtOpen: 20 });
    expect(line(view, list[4])).toMatchObject({
      variance: 0,
      movedSinceCount: true,
      expected: 19,
      expectedAtCount: 20,
    });
    expect(view.totals).toMatchObject({
      skus: 6,
      counted: 6,
      withVariance: 2,
      shrinkageUnits: 2,
      shrinkageFen: 400,
      surplusUnits: 3,
      surplusFen: 600,
      movedSinceCount: 1,
    });

    const refused = await office('POST', `/v1/stock-counts/${id}/approve`, {});
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'moved_since_count', details: { skus: [list[4]] } });
    const before = await Promise.all(list.map(level));
    const ok = await office('POST', `/v1/stock-counts/${id}/approve`, { acceptMoved: true });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', adjustments: 2 });
    const after = await Promise.all(list.map(level));
    expect(after.map((a, i) => a.onHand - before[i].onHand)).toEqual([-2, 3, 0, 0, 0, 0]);
    const adjustments = await t.app.db.read((m) =>
      rows<{ sku: string }>(m, "SELECT sku FROM stock_movement WHERE kind = 'adjustment' AND ref = ?", [`count:${id}`]),
    );
    expect(adjustments.map((a) => a.sku).sort()).toEqual([list[0], list[1]].sort());
    expect((await office('POST', `/v1/stock-counts/${id}/approve`, { acceptMoved: true })).status).toBe(409);
    expect((await office('PUT', `/v1/stock-counts/${id}/lines`, [{ sku: list[0], counted: 1 }])).status).toBe(409);
  });

  it('stock held by an unknown card payment is shown beside the variance and not written off', async () => {
    const [sku] = await skus(1, 10, 500);
    const o = (await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 3 }] })).body;
    const p = await till('POST', `/v1/orders/${o.id}/payments`, {
      method: 'card',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    expect((await till('GET', `/v1/payments/${p.body.id}?wait=5`)).body.status).toBe('unknown');
    // The customer walked out with 3; one more is simply missing.
    const id = (await office('POST', '/v1/stock-counts', { skus: [sku] })).body.id;
    expect(
      (
        await office('PUT', `/v1/stock-counts/${id}/lines`, 'sku,counted\n' + `${sku},6\n`, {
          'content-type': 'text/csv',
        })
      ).status,
    ).toBe(200);
    const view = (await office('GET', `/v1/stock-counts/${id}`)).body;
    expect(line(view, sku)).toMatchObject({
      expected: 10,
      counted: 6,
      variance: -4,
      heldByOpenPayments: 3,
      writeOff: 1,
    });
    expect(view.totals).toMatchObject({ shrinkageUnits: 1, shrinkageFen: 500, heldUnits: 3, heldFen: 1500 });
    expect((await office('POST', `/v1/stock-counts/${id}/approve`, {})).status).toBe(200);
    expect(await level(sku)).toMatchObject({ onHand: 9, reserved: 3 });
    // The payment proves approved: the sale takes the 3 once, and the shelf and the books agree.
    await office('POST', `/v1/payments/${p.body.id}/resolve`, { outcome: 'approved', note: 'acquirer confirms' });
    expect(await level(sku)).toMatchObject({ onHand: 6, reserved: 0 });
  });

  it('the CSV export lists every SKU with its figures and the totals', async () => {
    const list = await skus(3, 5, 100);
    const id = (await office('POST', '/v1/stock-counts', { skus: list })).body.id;
    await office('PUT', `/v1/stock-counts/${id}/lines`, `${list[0]},4\r\n${list[1]},7\r\n`, {
      'content-type': 'text/csv',
    });
    const res = await fetch(`${t.url}/v1/stock-counts/${id}/export.csv`, {
      headers: { authorization: `Bearer ${t.adminKey}` },
    });
    expect(res.headers.get('content-type')).toMatch(/text\/csv/);
    const text = (await res.text()).trim().split('\n');
    expect(text[0]).toMatch(/^sku,expected_at_open,expected,counted/);
    expect(text.slice(1, 4).map((l) => l.split(',').slice(0, 6).join(','))).toEqual([
      `${list[0]},5,5,4,5,-1`,
      `${list[1]},5,5,7,5,2`,
      `${list[2]},5,5,,,`,
    ]);
    expect(text[4]).toBe('# totals,shrinkage_fen=100,held_by_open_payments_fen=0,surplus_fen=200');
    await office('POST', `/v1/stock-counts/${id}/cancel`);
  });

  describe('malformed uploads are refused as a whole, by line number, with nothing changed', () => {
    it.each([
      ['an unknown SKU', (s: string[]) => `${s[0]},1\nNOPE-1,2\n`, 2, /not in this count/],
      ['a negative count', (s: string[]) => `${s[0]},-1\n`, 1, /whole number/],
      ['a fractional count', (s: string[]) => `sku,counted\n${s[0]},1.5\n`, 2, /whole number/],
      ['a missing column', (s: string[]) => `${s[0]},1\n${s[1]}\n`, 2, /2 columns/],
      ['a duplicate SKU', (s: string[]) => `${s[0]},1\n${s[1]},2\n${s[0]},3\n`, 3, /already appears on line 1/],
      ['text for a count', (s: string[]) => `${s[0]},many\n`, 1, /whole number/],
    ])('%s', async (_label, make, lineNo, message) => {
      const list = await skus(2, 5);
      const id = (await office('POST', '/v1/stock-counts', { skus: list })).body.id;
      const r = await office('PUT', `/v1/stock-counts/${id}/lines`, make(list), { 'content-type': 'text/csv' });
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe('invalid_count_lines');
      expect(r.body.error.details.errors[0]).toMatchObject({ line: lineNo, message: expect.stringMatching(message) });
      const view = (await office('GET', `/v1/stock-counts/${id}`)).body;
      expect(view.totals.counted).toBe(0);
      await office('POST', `/v1/stock-counts/${id}/cancel`);
    });

    it('JSON lines with bad values are a 400', async () => {
      const list = await skus(1, 5);
      const id = (await office('POST', '/v1/stock-counts', { skus: list })).body.id;
      for (const bad of [
        [{ sku: list[0], counted: -1 }],
        [{ sku: list[0], counted: 1.5 }],
        [{ sku: list[0] }],
        [],
        'x',
      ]) {
        const r = await office('PUT', `/v1/stock-counts/${id}/lines`, bad);
        expect([400, 415, 422]).toContain(r.status); // 'x' is sent without a Content-Type: 415
      }
      expect((await office('GET', `/v1/stock-counts/${id}`)).body.totals.counted).toBe(0);
    });
  });

  it('a later count of a SKU replaces the earlier one, both kept; cancelling changes no stock; a cancelled count cannot be approved', async () => {
    const [sku] = await skus(1, 5);
    const id = (await office('POST', '/v1/stock-counts', { skus: [sku] })).body.id;
    await office('PUT', `/v1/stock-counts/${id}/lines`, [{ sku, counted: 3 }]);
    await office('PUT', `/v1/stock-counts/${id}/lines`, [{ sku, counted: 4 }]);
    expect(line((await office('GET', `/v1/stock-counts/${id}`)).body, sku)).toMatchObject({ counted: 4, variance: -1 });
    const entries = await t.app.db.read((m) =>
      rows<{ counted: unknown }>(m, 'SELECT counted FROM stock_count_entry WHERE count_id = ? ORDER BY id', [id]),
    );
    expect(entries.map((e) => Number(e.counted))).toEqual([3, 4]);
    expect((await office('POST', `/v1/stock-counts/${id}/cancel`)).status).toBe(200);
    expect(await level(sku)).toMatchObject({ onHand: 5 });
    const approve = await office('POST', `/v1/stock-counts/${id}/approve`, {});
    expect(approve.status).toBe(409);
    expect(approve.body.error.code).toBe('count_not_open');
    expect((await office('PUT', `/v1/stock-counts/${id}/lines`, [{ sku, counted: 1 }])).status).toBe(409);
  });

  it('imports a 100 000-line CSV in one upload', async () => {
    // 100 000 SKUs created straight in the ledger (receipts and all), then counted in one CSV.
    const n = 100_000;
    const prefix = `BIG${name}`;
    const now = clock.now().getTime();
    await t.app.db.tx(async (m) => {
      for (let i = 0; i < n; i += 1000) {
        const chunk = Array.from({ length: Math.min(1000, n - i) }, (_, k) => `${prefix}-${i + k}`);
        await m.query(
          `INSERT INTO sku (sku, name, price_fen, kind, on_hand, reserved, created_at, updated_at) VALUES ${chunk.map(() => "(?, ?, 100, 'goods', 7, 0, ?, ?)").join(', ')}`,
          chunk.flatMap((s) => [s, s, now, now]),
        );
        await m.query(
          `INSERT INTO stock_movement (sku, kind, on_hand_delta, reserved_delta, actor, at) VALUES ${chunk.map(() => "(?, 'receipt', 7, 0, 'test', ?)").join(', ')}`,
          chunk.flatMap((s) => [s, now]),
        );
      }
    });
    const skuList = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    const opened = await office('POST', '/v1/stock-counts', {}); // every SKU in the store
    expect(opened.status).toBe(201);
    expect(opened.body.skus).toBeGreaterThanOrEqual(n);
    const id = opened.body.id;
    const csv = `\uFEFFsku,counted\r\n${skuList.map((s, i) => `${s},${i % 100 === 0 ? 6 : 7}`).join('\r\n')}\r\n`;
    const up = await office('PUT', `/v1/stock-counts/${id}/lines`, csv, { 'content-type': 'text/csv' });
    expect(up.status).toBe(200);
    expect(up.body.accepted).toBe(n);
    const view = (await office('GET', `/v1/stock-counts/${id}?limit=10`)).body;
    expect(view.totals).toMatchObject({
      skus: opened.body.skus,
      counted: n,
      withVariance: n / 100,
      shrinkageUnits: n / 100,
    });
    expect(view.lines).toHaveLength(10);
    expect(view.next).toBe(view.lines[9].sku);
    await office('POST', `/v1/stock-counts/${id}/cancel`);
  }, 120_000);
});
