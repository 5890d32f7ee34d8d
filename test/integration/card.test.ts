/**
 * Card payments through the real driver and the real terminal simulator (joined in-process by a
 * null-modem pair; test/terminal/pty.e2e.test.ts runs the same over a pty with the simulator as
 * its own process). Every scenario ends with the stock invariants checked.
 */
import { createSimulatedTerminal, SimulatedTerminal } from '../../src/terminal/in-process';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { exec } from '../../src/db/db';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';

const T_RESP = 700;

describe.each(testDbKinds())('card payments on $name', ({ name }) => {
  let t: TestApp;
  let lane: SimulatedTerminal;
  let cashier: Api;
  let office: Api;
  let admin: Api;
  const bank = new MemorySimBank();

  beforeAll(async () => {
    lane = await createSimulatedTerminal('lane-1', { bank, tRespMs: T_RESP, tAckMs: 150 });
    t = await startTestApp(name, {
      terminals: new Map([['lane-1', lane.terminal]]),
      config: { terminalTRespMs: T_RESP, reversalGraceSeconds: 3600 },
    });
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
    admin = t.api;
  });
  afterAll(async () => {
    await t?.stop();
    await lane?.close();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function order(qty = 2, priceFen = 1000): Promise<{ id: string; sku: string; totalFen: number }> {
    const sku = `CARD-${name}-${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 10 }] });
    const o = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty }] });
    expect(o.status).toBe(201);
    return { id: o.body.id, sku, totalFen: o.body.totalFen };
  }
  /** Sweeps until the attempt is no longer unknown (its first check is due a second after it became unknown). */
  async function sweepUntilSettled(paymentId: string): Promise<any> {
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 1100));
      expect((await admin('POST', '/v1/sweeps')).status).toBe(200);
      const p = (await cashier('GET', `/v1/payments/${paymentId}`)).body;
      if (p.status !== 'unknown') return p;
    }
    return (await cashier('GET', `/v1/payments/${paymentId}`)).body;
  }
  const stock = async (sku: string) => (await cashier('GET', `/v1/stock/${sku}`)).body;
  /** The terminal's answer held until the test releases it (well within T_RESP): busy for exactly that long. */
  function held(): { until: Promise<void>; release(): void } {
    let release = () => {};
    const until = new Promise<void>((r) => (release = r));
    return { until, release };
  }
  async function payCard(orderId: string, amountFen: number, extra: object = {}) {
    const r = await cashier('POST', `/v1/orders/${orderId}/payments`, {
      method: 'card',
      amountFen,
      lane: 'lane-1',
      ...extra,
    });
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('pending');
    expect(r.body.rf).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
    return (await cashier('GET', `/v1/payments/${r.body.id}?wait=10`)).body;
  }

  it('approved: the order is paid, stock sold once, card stored masked with what reconciliation needs', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'approve', prompts: ['请插卡或挥卡', '请输入密码'] });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('approved');
    expect(p.prompts).toEqual(['请插卡或挥卡', '请输入密码']);
    expect(p.card.masked).toBe('622848******1234');
    expect(p.terminal).toMatchObject({ terminalId: '12345678', merchantId: '898310048161234' });
    expect(p.terminal.traceNo).toMatch(/^\d{6}$/);
    expect(p.terminal.rrn).toMatch(/^\d{12}$/);
    expect(p.terminal.batchNo).toMatch(/^\d{6}$/);
    expect(await stock(o.sku)).toMatchObject({ onHand: 8, reserved: 0 });
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body.status).toBe('paid');
  });

  it.each([['51'], ['55'], ['C1']])(
    'declined %s: the attempt fails and the order keeps its stock for another try',
    async (rc) => {
      const o = await order();
      lane.simulator.expect(rc === 'C1' ? { action: 'C1' } : { action: 'decline', rc });
      const p = await payCard(o.id, o.totalFen);
      expect(p).toMatchObject({ status: 'declined', rc });
      expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
      lane.simulator.expect({ action: 'approve' });
      expect((await payCard(o.id, o.totalFen)).status).toBe('approved');
      expect(await stock(o.sku)).toMatchObject({ onHand: 8, reserved: 0 });
    },
  );

  it('the 202 is the attempt as committed (pending) even when the terminal declines before the answer is read', async () => {
    // The read of the answer is slowed until the terminal has surely answered: an answer read after the
    // terminal was started would say `declined` (seen once in CI on a loaded machine).
    const payments = t.app.payments;
    const view = payments.view.bind(payments);
    payments.view = async (...args: Parameters<typeof view>) => {
      await new Promise((r) => setTimeout(r, T_RESP + 500));
      return view(...args);
    };
    try {
      const o = await order();
      lane.simulator.expect({ action: 'decline', rc: '51' });
      const r = await cashier('POST', `/v1/orders/${o.id}/payments`, {
        method: 'card',
        amountFen: o.totalFen,
        lane: 'lane-1',
      });
      expect(r.status).toBe(202);
      expect(r.body.status).toBe('pending');
      expect((await cashier('GET', `/v1/payments/${r.body.id}?wait=10`)).body).toMatchObject({
        status: 'declined',
        rc: '51',
      });
    } finally {
      payments.view = view;
    }
  });

  it('busy terminal (BZ): not executed, a confirmed failure', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'BZ' });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('declined');
    expect(p.reason).toMatch(/not executed/);
    expect(await stock(o.sku)).toMatchObject({ reserved: 2 });
  });

  it('a NAKed first frame is sent again and handled once', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'approve', nakFirst: true });
    const before = bank.size;
    expect((await payCard(o.id, o.totalFen)).status).toBe('approved');
    expect(bank.size).toBe(before + 1);
  });

  it('a dropped ACK makes the driver resend; the terminal handles the repeat once', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'approve', dropAck: true });
    const requests: string[] = [];
    const listener = (m: { MT: string; RF?: string }) => requests.push(`${m.MT}:${m.RF}`);
    lane.simulator.on('request', listener);
    expect((await payCard(o.id, o.totalFen)).status).toBe('approved');
    lane.simulator.off('request', listener);
    expect(requests.filter((r) => r.startsWith('S0'))).toHaveLength(1);
  });

  it('noise between frames and a corrupted LRC on the answer do not change the outcome', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'approve', noise: true, corruptLrc: true, prompts: ['请插卡'] });
    expect((await payCard(o.id, o.totalFen)).status).toBe('approved');
  });

  it('98: unknown, stock held, no cancel; a sweep asks the terminal, which reverses on sign-in → released', async () => {
    const o = await order();
    lane.simulator.expect({ action: '98' });
    const p = await payCard(o.id, o.totalFen);
    expect(p).toMatchObject({ status: 'unknown', rc: '98' });
    expect(await stock(o.sku)).toMatchObject({ reserved: 2 });
    const cancel = await cashier('POST', `/v1/orders/${o.id}/cancel`);
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.code).toBe('payment_in_progress');
    expect((await bank.get(p.rf))?.status).toBe('approved');

    const after = await sweepUntilSettled(p.id);
    expect(after.status).toBe('reversed');
    expect((await bank.get(p.rf))?.status).toBe('reversed');
    expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
    // The order keeps its reservation for another try; releasing it is the cashier's call.
    expect((await cashier('POST', `/v1/orders/${o.id}/cancel`)).status).toBe(200);
    expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 0 });
  });

  it('silence: unknown after T_RESP; the journal later says approved → sold', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'silence', bank: 'approved' });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('unknown');
    expect(p.reason).toMatch(/no final response/);
    expect(await stock(o.sku)).toMatchObject({ reserved: 2, onHand: 10 });
    expect((await sweepUntilSettled(p.id)).status).toBe('approved');
    expect(await stock(o.sku)).toMatchObject({ reserved: 0, onHand: 8 });
  });

  it('port closed mid-transaction: unknown, stock held; the lane comes back', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'close', prompts: ['请插卡'], bank: 'declined' });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('unknown');
    expect(p.reason).toMatch(/line broke/);
    expect(await stock(o.sku)).toMatchObject({ reserved: 2 });
    for (let i = 0; i < 50 && !lane.terminal.isConnected(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(lane.terminal.isConnected()).toBe(true);
    expect((await sweepUntilSettled(p.id)).status).toBe('declined');
    expect(await stock(o.sku)).toMatchObject({ reserved: 2, onHand: 10 });
  });

  it('an unlisted RC is unknown, never a failure', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'unlisted', rc: 'Z7' });
    const p = await payCard(o.id, o.totalFen);
    expect(p).toMatchObject({ status: 'unknown', rc: 'Z7' });
    expect((await sweepUntilSettled(p.id)).status).toBe('approved');
  });

  it('a new tender while a card attempt is pending is refused', async () => {
    const o = await order();
    const terminal = held();
    lane.simulator.expect({ action: 'approve', hold: terminal.until });
    const first = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'card',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    const second = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'cash',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    terminal.release();
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('payment_in_progress');
    expect((await cashier('GET', `/v1/payments/${first.body.id}?wait=10`)).body.status).toBe('approved');
  });

  it('a second order on the same lane while the terminal is busy is not interleaved on the wire', async () => {
    const a = await order();
    const b = await order();
    const terminal = held();
    lane.simulator.expect({ action: 'approve', hold: terminal.until });
    const first = await cashier('POST', `/v1/orders/${a.id}/payments`, {
      method: 'card',
      amountFen: a.totalFen,
      lane: 'lane-1',
    });
    const second = await cashier('POST', `/v1/orders/${b.id}/payments`, {
      method: 'card',
      amountFen: b.totalFen,
      lane: 'lane-1',
    });
    terminal.release();
    expect([202, 409]).toContain(second.status);
    if (second.status === 202) {
      const p2 = (await cashier('GET', `/v1/payments/${second.body.id}?wait=10`)).body;
      expect(p2.status).toBe('declined');
      expect(p2.reason).toMatch(/busy/);
    } else {
      expect(second.body.error.code).toBe('terminal_busy');
    }
    expect((await cashier('GET', `/v1/payments/${first.body.id}?wait=10`)).body.status).toBe('approved');
  });

  it('cash over an unknown card only when the cashier says so; a late approval makes the order overpaid and queues a refund', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'silence', bank: 'approved' });
    const card = await payCard(o.id, o.totalFen);
    expect(card.status).toBe('unknown');
    const refused = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'cash',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    expect(refused.status).toBe(409);
    const cash = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'cash',
      amountFen: o.totalFen,
      lane: 'lane-1',
      acceptUnknownCard: true,
    });
    expect(cash.status).toBe(201);
    expect(await stock(o.sku)).toMatchObject({ onHand: 8, reserved: 0 });

    lane.simulator.expect({ action: 'approve' }); // the void the refund sends
    // Its first try finds the terminal busy (a sale took it between the idle check and the send): not
    // executed, so the refund is queued again, not failed.
    const voidSale = lane.terminal.voidSale.bind(lane.terminal);
    let busyOnce = true;
    lane.terminal.voidSale = async (...args: Parameters<typeof voidSale>) => {
      if (!busyOnce) return voidSale(...args);
      busyOnce = false;
      return { kind: 'not_executed', rc: 'BZ', reason: 'terminal busy' };
    };
    try {
      await sweepUntilSettled(card.id);
      await admin('POST', '/v1/sweeps'); // the refund goes out on the sweep after the approval
      expect(busyOnce).toBe(false);
      await admin('POST', '/v1/sweeps'); // and again after the busy terminal
    } finally {
      lane.terminal.voidSale = voidSale;
    }
    const late = (await cashier('GET', `/v1/payments/${card.id}`)).body;
    expect(late.status).toBe('approved');
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body).toMatchObject({
      status: 'paid',
      overpaidFen: o.totalFen,
    });
    expect(await stock(o.sku)).toMatchObject({ onHand: 8, reserved: 0 });
    expect(late.refund).toEqual({ state: 'done', amountFen: o.totalFen });
    const refunded = (await office('GET', '/v1/payments?refund=done')).body as { id: string }[];
    expect(refunded.map((x) => x.id)).toContain(card.id);
    expect((await office('GET', '/v1/payments?refund=bogus')).status).toBe(400);
    // Voided in the open batch: the terminal's journal and the bank both say so.
    expect(lane.simulator.journal.get(card.rf)?.status).toBe('V');
    expect((await bank.get(card.rf))?.status).toBe('reversed');
  });

  it('a refund the machines cannot finish is settled by a person: unknown, failed or manual → done, audited; others 409', async () => {
    const o = await order();
    lane.simulator.expect({ action: 'approve' });
    const p = await payCard(o.id, o.totalFen);
    const resolveRefund = (body: object, as: Api = office) => as('POST', `/v1/payments/${p.id}/refund/resolve`, body);
    const none = await resolveRefund({ outcome: 'done', note: 'nothing to settle' });
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('refund_not_resolvable');
    // An overpaid excess whose refund neither the terminal nor the acquirer can tell about.
    await t.app.db.tx((m) =>
      exec(m, "UPDATE payment SET refund_state = 'unknown', refund_fen = 500 WHERE id = ?", [p.id]),
    );
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body.owedFen).toBe(500);
    expect((await resolveRefund({ outcome: 'done' })).status).toBe(400);
    expect((await resolveRefund({ outcome: 'done', note: 'x' }, cashier)).status).toBe(403);
    const done = await resolveRefund({ outcome: 'done', note: 'acquirer confirms the refund by phone, ref 4411' });
    expect(done.status).toBe(200);
    expect(done.body.refund).toEqual({ state: 'done', amountFen: 500 });
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body.owedFen).toBe(0);
    expect((await resolveRefund({ outcome: 'done', note: 'again' })).status).toBe(409);
  });

  it('split tender: part card, part cash', async () => {
    const o = await order(3, 1000);
    lane.simulator.expect({ action: 'approve' });
    expect((await payCard(o.id, 1200)).status).toBe('approved');
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body).toMatchObject({ status: 'reserved', paidFen: 1200 });
    expect(
      (await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 1800, lane: 'lane-1' }))
        .status,
    ).toBe(201);
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body.status).toBe('paid');
    expect(await stock(o.sku)).toMatchObject({ onHand: 7, reserved: 0 });
  });
});
