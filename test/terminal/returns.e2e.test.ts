/**
 * Refund legs end to end: the service drives `pos sim-terminal` (its own process) over a real pty
 * pair, on both databases. Void in the open batch, refund the next day, an unknown refund settled by
 * the sweep under its own RF, a declined leg paid in cash, and a split-tender return.
 */
import { autoDetect } from '@serialport/bindings-cpp';
import { SerialTerminal } from '../../src/terminal/serial-terminal';
import { Clock } from '../../src/shared/clock';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { ptyPair, simTerminalProcess, socatAvailable } from '../support/pty';

const T_RESP = 1500;
const haveSocat = socatAvailable();
if (!haveSocat) {
  const msg = '!!! socat is not installed: the pty returns suite cannot run (apt-get install -y socat)';
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(msg);
}
const suite = haveSocat ? describe.each(testDbKinds()) : describe.skip.each(testDbKinds());

/** Real time plus an offset, so "the next day" can come without waiting for it. */
class ShiftedClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

suite('refund legs over a pty on $name', ({ name }) => {
  let t: TestApp;
  let pair: Awaited<ReturnType<typeof ptyPair>>;
  let sim: Awaited<ReturnType<typeof simTerminalProcess>>;
  let terminal: SerialTerminal;
  let cashier: Api;
  let office: Api;
  const clock = new ShiftedClock();

  beforeAll(async () => {
    pair = await ptyPair();
    sim = await simTerminalProcess(pair.b);
    terminal = await new SerialTerminal('lane-1', {
      binding: autoDetect(),
      path: pair.a,
      tRespMs: T_RESP,
      reconnectMs: 200,
    }).start();
    t = await startTestApp(name, {
      terminals: new Map([['lane-1', terminal]]),
      clock,
      config: { terminalTRespMs: T_RESP, reversalGraceSeconds: 3600 },
    });
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
    await sim?.stop();
    pair?.stop();
  });
  afterEach(async () => {
    clock.offsetMs = 0;
    expect(await t.check()).toEqual([]);
  });

  const rules = async (...r: object[]) => {
    const res = await fetch(`${sim.control}/rules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(r),
    });
    expect(res.status).toBe(200);
  };
  const journal = async () =>
    (await (await fetch(`${sim.control}/journal`)).json()) as {
      rf: string;
      mt: string;
      status: string;
      amountFen: number;
    }[];
  let seq = 0;
  async function paidOrder(qty: number, priceFen: number, tenders: ('card' | 'cash' | number)[] = ['card']) {
    const sku = `PTYR-${name}-${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 10 }] });
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty }] })).body;
    const cards: any[] = [];
    let left = o.totalFen;
    for (let i = 0; i < tenders.length; i++) {
      const tnd = tenders[i];
      const amountFen = i === tenders.length - 1 ? left : (tnd as number);
      left -= amountFen;
      const method = typeof tnd === 'number' ? 'card' : tnd;
      if (method === 'cash') {
        expect(
          (await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen, lane: 'lane-1' })).status,
        ).toBe(201);
      } else {
        await rules({ action: 'approve' });
        const r = await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen, lane: 'lane-1' });
        expect(r.status).toBe(202);
        const p = (await cashier('GET', `/v1/payments/${r.body.id}?wait=15`)).body;
        expect(p.status).toBe('approved');
        cards.push(p);
      }
    }
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body.status).toBe('paid');
    return { o, sku, cards };
  }
  const ret = (orderId: string, lines: { lineNo: number; qty: number }[]) =>
    cashier('POST', `/v1/orders/${orderId}/returns`, { lines });

  it("same China day, whole card amount: voided (V0) under the leg's own RF", async () => {
    const { o, cards } = await paidOrder(1, 1880);
    await rules({ action: 'approve' });
    const r = await ret(o.id, [{ lineNo: 1, qty: 1 }]);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      status: 'refunded',
      refundFen: 1880,
      legs: [expect.objectContaining({ via: 'V0', status: 'approved', amountFen: 1880 })],
    });
    const j = await journal();
    expect(j.find((x) => x.rf === r.body.legs[0].rf)).toMatchObject({ mt: 'V0', status: 'A', amountFen: 1880 });
    expect(r.body.legs[0].rf).not.toBe(cards[0].rf);
  });

  it('the next day: refunded (R0) with RR and OD of the original', async () => {
    const { o, cards } = await paidOrder(1, 1990);
    clock.offsetMs = 24 * 3600_000;
    await rules({ action: 'approve' });
    const r = await ret(o.id, [{ lineNo: 1, qty: 1 }]);
    expect(r.body.legs).toEqual([expect.objectContaining({ via: 'R0', status: 'approved', amountFen: 1990 })]);
    const j = await journal();
    expect(j.find((x) => x.rf === r.body.legs[0].rf)).toMatchObject({ mt: 'R0', status: 'A', amountFen: 1990 });
    expect(j.find((x) => x.rf === cards[0].rf)).toMatchObject({ status: 'A' });
  });

  it('no answer to the refund: the leg stays unknown, and the sweep settles it by Q0 on the same RF (never re-sent)', async () => {
    const { o } = await paidOrder(2, 1000);
    await rules({ action: 'silence', bank: 'approved' });
    const r = await ret(o.id, [{ lineNo: 1, qty: 1 }]);
    expect(r.body).toMatchObject({
      status: 'refunding',
      legs: [expect.objectContaining({ via: 'R0', status: 'unknown' })],
    });
    const rf = r.body.legs[0].rf;
    let v: any;
    for (let i = 0; i < 6; i++) {
      await new Promise((res) => setTimeout(res, 1100));
      const s = await t.api('POST', '/v1/sweeps');
      expect(s.status).toBe(200);
      v = (await cashier('GET', `/v1/returns/${r.body.id}`)).body;
      if (v.legs[0].status !== 'unknown') break;
    }
    expect(v).toMatchObject({ status: 'refunded', legs: [expect.objectContaining({ status: 'approved', rf })] });
    // Exactly one refund request reached the terminal for this return.
    expect((await journal()).filter((x) => x.mt === 'R0' && x.rf === rf)).toHaveLength(1);
    expect(
      sim
        .output()
        .split('\n')
        .filter((l) => l.includes(`R0 `) && l.includes(`RF=${rf}`)),
    ).toHaveLength(1);
  });

  it('a declined refund leg is failed and listed; paid in cash it is done, audited', async () => {
    const { o } = await paidOrder(2, 1000);
    await rules({ action: 'decline', rc: '51' });
    const r = await ret(o.id, [{ lineNo: 1, qty: 2 }]);
    expect(r.body).toMatchObject({
      status: 'needs_attention',
      legs: [expect.objectContaining({ via: 'V0', status: 'failed', rc: '51' })],
    });
    const leg = r.body.legs[0];
    expect((await office('GET', '/v1/refund-legs')).body.map((l: any) => l.id)).toContain(leg.id);
    const paid = await cashier('POST', `/v1/returns/${r.body.id}/legs/${leg.id}/cash`, {
      note: 'card refund declined; 20.00 paid from the drawer',
    });
    expect(paid.body).toMatchObject({
      status: 'refunded',
      legs: [expect.objectContaining({ status: 'paid_in_cash' })],
    });
    const audits = await t.fdb.db.ds.query(
      "SELECT action FROM audit_log WHERE entity = 'refund_leg' AND entity_id = ?",
      [leg.id],
    );
    expect(audits.map((a: any) => a.action)).toContain('paid_in_cash');
  });

  it('split tender (card + cash): a partial return goes to the newest tender first, the rest of it to the card', async () => {
    const { o } = await paidOrder(3, 1000, [2000, 'cash']); // card 20.00, then cash 10.00
    const first = await ret(o.id, [{ lineNo: 1, qty: 1 }]);
    expect(first.body.legs.map((l: any) => [l.method, l.amountFen, l.status])).toEqual([['cash', 1000, 'approved']]);
    await rules({ action: 'approve' });
    const second = await ret(o.id, [{ lineNo: 1, qty: 2 }]);
    expect(second.body.legs.map((l: any) => [l.method, l.via, l.amountFen, l.status])).toEqual([
      ['card', 'V0', 2000, 'approved'],
    ]);
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body).toMatchObject({
      refundedFen: 3000,
      lines: [expect.objectContaining({ returnedQty: 3 })],
    });
  });
});
