/**
 * Shifts (交班) with POS_SHIFTS=on, on both databases: open with a float, X report live, close with
 * the counted cash (Z report kept and printed on the lane's printer), over/short, and a lane with
 * no open shift refusing new orders and tenders.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedTerminal, SimulatedTerminal } from '../../src/terminal/in-process';
import { createSimulatedPrinter, SimulatedPrinter } from '../../src/printer/lanes';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { Db, exec, rows } from '../../src/db/db';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(testDbKinds())('shifts on $name', ({ name }) => {
  let t: TestApp;
  let term: SimulatedTerminal;
  let printer: SimulatedPrinter;
  let dir: string;
  let cashier: Api;
  let cashier2: Api;
  let office: Api;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pos-shifts-'));
    term = await createSimulatedTerminal('lane-1', { bank: new MemorySimBank(), tRespMs: 700, tAckMs: 150 });
    printer = await createSimulatedPrinter('lane-1', dir, { tStatusMs: 300 });
    t = await startTestApp(name, {
      terminals: new Map([['lane-1', term.terminal]]),
      config: { terminalTRespMs: 700, reversalGraceSeconds: 3600, cashLanes: ['lane-2'] },
      deps: {
        printers: new Map([['lane-1', printer.printer]]),
        lane: { printPollMs: 100, printRetryMs: 200, shiftsRequired: true },
      },
    });
    cashier = await t.as('cashier', 'lane-1');
    cashier2 = await t.as('cashier', 'lane-2');
    office = await t.as('backoffice');
    await office('PUT', '/v1/skus/SH-1', { name: '面包', priceFen: 1250 });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku: 'SH-1', qty: 100 }] });
  });
  afterAll(async () => {
    await t?.stop();
    await printer?.close();
    await term?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  const newOrder = (api: Api, lane: string, qty = 1) =>
    api('POST', '/v1/orders', { lane, lines: [{ sku: 'SH-1', qty }] });
  const stock = async () => (await office('GET', '/v1/stock/SH-1')).body;
  /** A card tender of ¥12.50 on lane-1 whose terminal holds its approval back until `release()`. */
  async function heldCard(orderId: string): Promise<{ card: { status: number; body: any }; release: () => void }> {
    let release!: () => void;
    term.simulator.expect({ action: 'approve', hold: new Promise<void>((r) => (release = r)) });
    const card = await cashier('POST', `/v1/orders/${orderId}/payments`, {
      method: 'card',
      amountFen: 1250,
      lane: 'lane-1',
    });
    expect(card.status).toBe(202);
    return { card, release };
  }

  it('a lane with no open shift takes no order, and nothing is reserved', async () => {
    const before = await stock();
    const r = await newOrder(cashier, 'lane-1');
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('no_open_shift');
    expect(await stock()).toEqual(before);
    expect((await cashier('GET', '/v1/me')).body.shiftsRequired).toBe(true);
  });

  it('bad input is a 400 and opens nothing', async () => {
    expect((await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: -1 })).status).toBe(400);
    expect((await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 10.5 })).status).toBe(400);
    expect((await cashier('POST', '/v1/shifts', { lane: 'lane-2', floatFen: 100 })).body.error.code).toBe(
      'lane_mismatch',
    );
    expect((await t.api('POST', '/v1/shifts', { lane: 'lane-x', floatFen: 100 })).body.error.code).toBe('unknown_lane');
    expect(
      (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 100, note: 'x' })).body.error.message,
    ).toMatch(/unknown field "note"/);
    expect((await cashier('GET', '/v1/shifts?lane=lane-1&status=open')).body.total).toBe(0);
  });

  it('open, sell by cash and card, X report, close with the counted cash: Z with over/short, printed and kept', async () => {
    const opened = await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 10000 });
    expect(opened.status).toBe(201);
    expect(opened.body).toMatchObject({ lane: 'lane-1', status: 'open', floatFen: 10000, countedCashFen: null });
    const id = opened.body.id;
    expect((await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 5000 })).body.error.code).toBe(
      'shift_already_open',
    );

    const o1 = (await newOrder(cashier, 'lane-1', 2)).body;
    expect(
      (await cashier('POST', `/v1/orders/${o1.id}/payments`, { method: 'cash', amountFen: 2500, lane: 'lane-1' }))
        .status,
    ).toBe(201);
    const o2 = (await newOrder(cashier, 'lane-1', 1)).body;
    const card = await cashier('POST', `/v1/orders/${o2.id}/payments`, {
      method: 'card',
      amountFen: 1250,
      lane: 'lane-1',
    });
    expect((await cashier('GET', `/v1/payments/${card.body.id}?wait=10`)).body.status).toBe('approved');

    const x = (await cashier('GET', `/v1/shifts/${id}/report`)).body;
    expect(x).toMatchObject({
      kind: 'X',
      status: 'open',
      floatFen: 10000,
      sales: { cash: { count: 1, fen: 2500 }, card: { count: 1, fen: 1250 }, totalFen: 3750 },
      expectedCashFen: 12500,
      countedCashFen: null,
      overShortFen: null,
    });

    const receipts = printer.simulator.receipts.length;
    const closed = await cashier('POST', `/v1/shifts/${id}/close`, { countedCashFen: 12400 });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({
      kind: 'Z',
      status: 'closed',
      expectedCashFen: 12500,
      countedCashFen: 12400,
      overShortFen: -100,
      sales: x.sales,
    });
    expect((await office('GET', `/v1/shifts/${id}/report`)).body).toEqual(closed.body);

    for (
      let i = 0;
      i < 100 && !printer.simulator.receipts.slice(receipts).some((r) => r.text.includes('Z REPORT'));
      i++
    )
      await sleep(50);
    const z = printer.simulator.receipts.slice(receipts).find((r) => r.text.includes('Z REPORT'));
    expect(z?.text).toMatch(/应有现金 +125\.00/);
    expect(z?.text).toMatch(/实点现金 +124\.00/);
    expect(z?.text).toMatch(/长短款 +-1\.00/);

    expect((await cashier('POST', `/v1/shifts/${id}/close`, { countedCashFen: 12500 })).body.error.code).toBe(
      'shift_not_open',
    );
    expect((await newOrder(cashier, 'lane-1')).body.error.code).toBe('no_open_shift');
  });

  it('a tender is refused once the shift is closed; the order keeps its stock until it is cancelled', async () => {
    const s = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 0 })).body;
    const o = (await newOrder(cashier, 'lane-1')).body;
    await cashier('POST', `/v1/shifts/${s.id}/close`, { countedCashFen: 0 });
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 1250, lane: 'lane-1' });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('no_open_shift');
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body).toMatchObject({ status: 'reserved', paidFen: 0 });
    expect((await cashier('POST', `/v1/orders/${o.id}/cancel`)).status).toBe(200);
  });

  it('a card approved after its shift closed and before the next opened counts in the next shift, not in none', async () => {
    const s1 = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 0 })).body;
    const o = (await newOrder(cashier, 'lane-1')).body;
    const { card, release } = await heldCard(o.id);
    // Closed while the terminal holds its answer back: the Z has the card as not confirmed yet.
    const z = (await cashier('POST', `/v1/shifts/${s1.id}/close`, { countedCashFen: 0 })).body;
    expect(z).toMatchObject({
      heldCardPayments: 1,
      sales: { card: { count: 0, fen: 0 } },
      countsFrom: expect.any(String),
    });
    release();
    expect((await cashier('GET', `/v1/payments/${card.body.id}?wait=10`)).body.status).toBe('approved');
    const approvedAt = await finishedAt('payment', 'id', card.body.id);
    expect(approvedAt).toBeGreaterThan(Date.parse(z.closedAt));
    await sleep(5);
    const s2 = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 0 })).body;
    expect(Date.parse(s2.openedAt)).toBeGreaterThan(approvedAt);
    const x = (await cashier('GET', `/v1/shifts/${s2.id}/report`)).body;
    // Before: the window began at the open, and the card was in no shift's report.
    expect(x).toMatchObject({
      kind: 'X',
      openedAt: s2.openedAt,
      countsFrom: new Date(Date.parse(z.closedAt) + 1).toISOString(),
      sales: { cash: { count: 0, fen: 0 }, card: { count: 1, fen: 1250 }, totalFen: 1250 },
      heldCardPayments: 0,
    });
    expect((await office('GET', `/v1/shifts/${s1.id}/report`)).body).toEqual(z); // the kept Z is as it was
    const z2 = (await cashier('POST', `/v1/shifts/${s2.id}/close`, { countedCashFen: 0 })).body;
    expect(z2.sales.card).toEqual({ count: 1, fen: 1250 });
    const printed = () => printer.simulator.receipts.find((r) => r.text.includes(`班次 ${s2.id}`));
    for (let i = 0; i < 100 && !printed(); i++) await sleep(50);
    expect(printed()?.text).toMatch(/计入自 \(上次交班后\)/);
  });

  it('a close waits for a cash sale in flight on its lane, and its Z report counts that sale', async () => {
    const s = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 1000 })).body;
    const o = (await newOrder(cashier, 'lane-1')).body;
    // The sale stops inside its transaction, written and not committed (a paid hook that waits).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inside!: () => void;
    const reached = new Promise<void>((r) => (inside = r));
    t.app.payments.onOrderPaid({
      appliesTo: (order) => order.id === o.id,
      run: async () => {
        inside();
        await gate;
      },
    });
    const sale = cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 1250, lane: 'lane-1' });
    await reached;
    let closed = false;
    const close = cashier('POST', `/v1/shifts/${s.id}/close`, { countedCashFen: 2250 }).then((r) => {
      closed = true;
      return r;
    });
    await sleep(300);
    expect(closed).toBe(false); // before: the close read its report past the uncommitted sale and answered
    release();
    const paid = await sale;
    expect(paid.status).toBe(201);
    const z = (await close).body;
    expect(z).toMatchObject({
      kind: 'Z',
      sales: { cash: { count: 1, fen: 1250 } },
      expectedCashFen: 2250,
      overShortFen: 0,
    });
    // Inside the window that counted it.
    expect(await finishedAt('payment', 'id', paid.body.id)).toBeLessThanOrEqual(Date.parse(z.closedAt));
  });

  /**
   * A close of lane-1's open shift in progress on another connection, as the service's close does it: the row
   * locked by the open_lane index, `during` run while it is held, then the row closed at `closedAt`, the clock
   * let past it, and the commit. Resolves to `closedAt`.
   */
  async function closeElsewhere(shiftId: string, during: () => Promise<void>): Promise<number> {
    const other = await Db.fromUrl(t.fdb.url, { poolSize: 1 }).open();
    try {
      return await other.tx(async (m) => {
        await rows(m, `SELECT id FROM shift WHERE open_lane = ?${other.forUpdate}`, ['lane-1']);
        await during();
        const closedAt = Date.now();
        await exec(m, "UPDATE shift SET status = 'closed', open_lane = NULL, closed_at = ? WHERE id = ?", [
          closedAt,
          shiftId,
        ]);
        await sleep(5);
        return closedAt;
      });
    } finally {
      await other.close();
    }
  }
  const finishedAt = async (table: 'payment' | 'refund_leg', column: string, id: string) =>
    Number(
      (
        await rows<{ at: unknown }>(t.fdb.db.ds.manager, `SELECT finished_at AS at FROM ${table} WHERE ${column} = ?`, [
          id,
        ])
      )[0].at,
    );

  it('a cash sale that asks while its shift is closing waits for the close, is refused, and writes nothing', async () => {
    if (name !== 'mysql') return; // SQLite runs one transaction at a time: a second connection would only queue
    const s = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 0 })).body;
    const o = (await newOrder(cashier, 'lane-1')).body;
    let answered = false;
    let sale!: Promise<{ status: number; body: any }>;
    await closeElsewhere(s.id, async () => {
      sale = cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 1250, lane: 'lane-1' }).then(
        (r) => {
          answered = true;
          return r;
        },
      );
      await sleep(300);
      expect(answered).toBe(false); // before: the sale committed at once, inside the window the close was reading
    });
    const r = await sale;
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('no_open_shift');
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body).toMatchObject({ status: 'reserved', paidFen: 0 });
    const [{ n }] = await rows<{ n: unknown }>(
      t.fdb.db.ds.manager,
      'SELECT COUNT(*) AS n FROM payment WHERE order_id = ?',
      [o.id],
    );
    expect(Number(n)).toBe(0);
    expect((await cashier('POST', `/v1/orders/${o.id}/cancel`)).status).toBe(200);
  });

  it('a card approved while its shift is closing is stamped after the close, never inside the window the Z has read', async () => {
    if (name !== 'mysql') return; // as above
    const s = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 0 })).body;
    const o = (await newOrder(cashier, 'lane-1')).body;
    let card!: { status: number; body: any };
    const closedAt = await closeElsewhere(s.id, async () => {
      card = await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen: 1250, lane: 'lane-1' });
      await sleep(1500); // the terminal has answered by now; its approval waits for this close
    });
    expect(card.status).toBe(202);
    expect((await cashier('GET', `/v1/payments/${card.body.id}?wait=10`)).body.status).toBe('approved');
    // Before: stamped during the close, inside the closed window.
    expect(await finishedAt('payment', 'id', card.body.id)).toBeGreaterThan(closedAt);
  });

  it('cash given back by a return while its shift is closing is stamped after the close, never inside the window the Z has read', async () => {
    if (name !== 'mysql') return; // as above
    const s = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 5000 })).body;
    const o = (await newOrder(cashier, 'lane-1')).body;
    expect(
      (await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 1250, lane: 'lane-1' }))
        .status,
    ).toBe(201);
    let ret!: Promise<{ status: number; body: any }>;
    const closedAt = await closeElsewhere(s.id, async () => {
      ret = cashier('POST', `/v1/orders/${o.id}/returns`, { lines: [{ lineNo: 1, qty: 1 }], restock: true });
      await sleep(300);
    });
    const r = await ret;
    expect(r.status).toBe(201);
    expect(r.body.legs).toMatchObject([{ method: 'cash', status: 'approved', amountFen: 1250 }]);
    // Before: stamped while the close held the lane, inside its window.
    expect(await finishedAt('refund_leg', 'return_id', r.body.id)).toBeGreaterThan(closedAt);
  });

  it("a card approval locks its lane's shift before its order, as a cash tender does", async () => {
    if (name !== 'mysql') return; // row locks: SQLite runs one transaction at a time
    const s = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 0 })).body;
    const o = (await newOrder(cashier, 'lane-1')).body;
    const { card, release } = await heldCard(o.id);
    // A close under way on another connection holds the shift row; the terminal then answers.
    const other = await Db.fromUrl(t.fdb.url, { poolSize: 2 }).open();
    const closer = other.ds.createQueryRunner();
    const probe = other.ds.createQueryRunner();
    let orderFree: boolean;
    try {
      await closer.connect();
      await closer.startTransaction();
      await closer.query('SELECT id FROM shift WHERE open_lane = ? FOR UPDATE', ['lane-1']);
      release();
      await sleep(500); // the approval is waiting for the shift by now
      await probe.connect();
      await probe.startTransaction();
      orderFree = await probe.query('SELECT id FROM orders WHERE id = ? FOR UPDATE NOWAIT', [o.id]).then(
        () => true,
        () => false,
      );
      await probe.rollbackTransaction();
      await closer.rollbackTransaction();
    } finally {
      await probe.release();
      await closer.release();
      await other.close();
    }
    // Before: the approval held the order's lock while it waited for the shift, the other way round from a
    // cash tender, and the two with a close could deadlock (one rolled back and run again).
    expect(orderFree).toBe(true);
    expect((await cashier('GET', `/v1/payments/${card.body.id}?wait=10`)).body.status).toBe('approved');
    expect((await cashier('POST', `/v1/shifts/${s.id}/close`, { countedCashFen: 0 })).body.sales.card).toEqual({
      count: 1,
      fen: 1250,
    });
  });

  it('a Z kept before countsFrom existed reads as counted from its open', async () => {
    const s = (await cashier2('POST', '/v1/shifts', { lane: 'lane-2', floatFen: 0 })).body;
    const z = (await cashier2('POST', `/v1/shifts/${s.id}/close`, { countedCashFen: 0 })).body;
    const { countsFrom: _, ...old } = z;
    await t.fdb.db.tx((m) => exec(m, 'UPDATE shift SET z_report = ? WHERE id = ?', [JSON.stringify(old), s.id]));
    expect((await office('GET', `/v1/shifts/${s.id}/report`)).body).toEqual({ ...old, countsFrom: z.openedAt });
  });

  it('another lane is not affected by lane-1 shifts, and a key of lane-1 cannot close it', async () => {
    const s = (await cashier2('POST', '/v1/shifts', { lane: 'lane-2', floatFen: 500 })).body;
    expect((await cashier('POST', `/v1/shifts/${s.id}/close`, { countedCashFen: 500 })).body.error.code).toBe(
      'lane_mismatch',
    );
    expect((await cashier('GET', `/v1/shifts/${s.id}/report`)).body.error.code).toBe('lane_mismatch');
    expect((await cashier2('POST', `/v1/shifts/${s.id}/close`, { countedCashFen: 600 })).body).toMatchObject({
      overShortFen: 100,
      expectedCashFen: 500,
    });
  });

  it('lists shifts by lane and time, newest first, paged', async () => {
    const all = (await office('GET', '/v1/shifts?lane=lane-1')).body;
    const closedOnLane1 = name === 'mysql' ? 9 : 5; // the closing-race tests run on MariaDB only
    expect(all.total).toBe(closedOnLane1);
    expect(all.items.map((s: { status: string }) => s.status)).toEqual(Array(closedOnLane1).fill('closed'));
    expect(Date.parse(all.items[0].openedAt)).toBeGreaterThanOrEqual(Date.parse(all.items[1].openedAt));
    const page = (await office('GET', '/v1/shifts?lane=lane-1&limit=1&offset=1')).body;
    expect(page).toMatchObject({ total: closedOnLane1, limit: 1, offset: 1 });
    expect(page.items[0].id).toBe(all.items[1].id);
    const future = encodeURIComponent(new Date(Date.now() + 3600_000).toISOString());
    expect((await office('GET', `/v1/shifts?from=${future}`)).body.total).toBe(0);
    expect((await office('GET', '/v1/shifts?from=yesterday')).status).toBe(400);
    // A lane-bound key sees its own lane only.
    expect((await cashier('GET', '/v1/shifts')).body.items.every((s: { lane: string }) => s.lane === 'lane-1')).toBe(
      true,
    );
    expect((await office('GET', '/v1/shifts/00000000-0000-4000-8000-000000000000/report')).status).toBe(404);
  });
});
