/**
 * Issue 10's faults that the sweeper owns, each named after the fault: the real driver and the real
 * terminal simulator (in-process null modem), the acquirer simulator over HTTP, one bank behind both.
 * Every scenario ends with the stock invariants checked.
 */
import { createSimulatedTerminal, SimulatedTerminal } from '../../src/terminal/in-process';
import { ManualClock } from '../../src/shared/clock';
import { exec } from '../../src/db/db';
import { simulatedAcquirer } from '../support/acquirer';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { GatedAcquirer, SwitchableTerminal } from '../support/fault-doubles';

const T_RESP = 600;
// 10:00 China time on 2026-11-25
const MORNING = new Date('2026-11-25T02:00:00Z');

describe.each(testDbKinds())('sweeper faults on $name', ({ name }) => {
  let t: TestApp;
  let clock: ManualClock;
  let acq: Awaited<ReturnType<typeof simulatedAcquirer>>;
  let gated: GatedAcquirer;
  let sim: SimulatedTerminal;
  let lane: SwitchableTerminal;
  let cashier: Api;
  let office: Api;

  beforeAll(async () => {
    clock = new ManualClock(MORNING);
    acq = await simulatedAcquirer(clock);
    gated = new GatedAcquirer(acq.acquirer);
    sim = await createSimulatedTerminal('lane-1', {
      bank: acq.bank,
      tRespMs: T_RESP,
      tAckMs: 150,
      now: () => clock.now(),
    });
    lane = new SwitchableTerminal(sim.terminal);
    t = await startTestApp(name, {
      clock,
      acquirer: gated,
      terminals: new Map([['lane-1', lane]]),
      config: {
        terminalTRespMs: T_RESP,
        reversalGraceSeconds: 3600,
        suspenseAfterSeconds: 86400,
        orderHoldSeconds: 3 * 86400,
      },
    });
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
    await sim?.close();
    await acq?.sim.close();
  });
  beforeEach(() => {
    clock.set(new Date(MORNING.getTime() + seq * 60_000));
    lane.busy = false;
    lane.saleThrows = null;
  });
  afterEach(async () => {
    acq.sim.clearFaults();
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function order(qty = 2, priceFen = 1000): Promise<{ id: string; sku: string; totalFen: number }> {
    const sku = `FLT-${name}-${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 10 }] });
    const o = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty }] });
    expect(o.status).toBe(201);
    return { id: o.body.id, sku, totalFen: o.body.totalFen };
  }
  async function payCard(orderId: string, amountFen: number) {
    const r = await cashier('POST', `/v1/orders/${orderId}/payments`, { method: 'card', amountFen, lane: 'lane-1' });
    expect(r.status).toBe(202);
    return (await cashier('GET', `/v1/payments/${r.body.id}?wait=10`)).body;
  }
  const payment = async (id: string) => (await cashier('GET', `/v1/payments/${id}`)).body;
  const orderView = async (id: string) => (await cashier('GET', `/v1/orders/${id}`)).body;
  const stock = async (sku: string) => (await cashier('GET', `/v1/stock/${sku}`)).body;
  async function sweepAfter(ms: number) {
    clock.advance(ms);
    const r = await t.api('POST', '/v1/sweeps');
    expect(r.status).toBe(200);
    return r.body;
  }

  describe('RC 98 approved from the acquirer', () => {
    it('while the terminal holds the reversal, an acquirer 00 never sells the goods; the terminal flush then Q0 R settles it reversed', async () => {
      const o = await order();
      sim.simulator.expect({ action: '98' });
      const p = await payCard(o.id, o.totalFen);
      expect(p).toMatchObject({ status: 'unknown', rc: '98', terminalReversal: 'pending' });
      expect((await acq.bank.get(p.rf))?.status).toBe('approved'); // the bank has it as approved for now
      acq.sim.setFault(p.rf, 'timeout', Infinity, 'reverse'); // our own reversal gets no answer

      lane.busy = true; // e.g. another payment's Q0 on the wire: the sweeper has to ask the acquirer
      const r = await sweepAfter(1000);
      expect(r.approved).toBe(0);
      const held = await payment(p.id);
      expect(held).toMatchObject({ status: 'unknown', terminalReversal: 'pending', checks: 1 });
      expect(acq.sim.reversedOrderIds).toContain(p.rf); // it prefers cancelling at the acquirer
      expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
      expect((await orderView(o.id)).status).toBe('reserved');

      lane.busy = false; // free again: sign-in flushes the terminal's reversal, its journal says R
      await sweepAfter(2000);
      expect(await payment(p.id)).toMatchObject({ status: 'reversed', terminalReversal: 'flushed' });
      expect((await acq.bank.get(p.rf))?.status).toBe('reversed');
      expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
    });

    it('an ACP reversal answered 00 is a way out: reversed, nothing sold', async () => {
      const o = await order();
      sim.simulator.expect({ action: '98' });
      const p = await payCard(o.id, o.totalFen);
      lane.busy = true;
      await sweepAfter(1000);
      expect(await payment(p.id)).toMatchObject({ status: 'reversed', reason: 'reversed_at_acquirer' });
      expect((await acq.bank.get(p.rf))?.status).toBe('reversed');
      expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
    });

    it('past the reversal window with the terminal unreachable: suspense for the T+1 file, stock held', async () => {
      const o = await order();
      sim.simulator.expect({ action: '98' });
      const p = await payCard(o.id, o.totalFen);
      acq.sim.setFault(p.rf, 'timeout', Infinity, 'reverse');
      lane.busy = true;
      clock.set(new Date('2026-11-25T15:30:00Z')); // 23:30 China: past the acquirer's cut-off for this sale
      await sweepAfter(1000);
      expect(await payment(p.id)).toMatchObject({
        status: 'suspense',
        terminalReversal: 'pending',
        reason: 'terminal_reversal_unsettled',
      });
      expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
      lane.busy = false;
      await sweepAfter(3600_000); // the terminal is back: its flush settles it after all
      expect((await payment(p.id)).status).toBe('reversed');
    });
  });

  describe('states nobody owns', () => {
    it('an overpaid-card refund left in_progress by a crash becomes unknown and is asked about by its own RF, never sent again', async () => {
      const o = await order();
      sim.simulator.expect({ action: 'approve' });
      const p = await payCard(o.id, o.totalFen);
      expect(p.status).toBe('approved');
      // The void went out under its stored RF and was approved; the service died before recording the answer.
      const refundRf = `${p.rf.slice(0, 29)}-RF`;
      sim.simulator.expect({ action: 'approve' });
      expect(
        (await sim.terminal.voidSale({ rf: refundRf, amountFen: p.amountFen, traceNo: p.terminal.traceNo })).kind,
      ).toBe('approved');
      await t.app.db.tx((m) =>
        exec(
          m,
          "UPDATE payment SET refund_state = 'in_progress', refund_fen = ?, refund_rf = ?, refund_txn_time = ? WHERE id = ?",
          [p.amountFen, refundRf, '20261125100000', p.id],
        ),
      );
      await t.app.db.tx((m) => exec(m, 'UPDATE orders SET overpaid_fen = ? WHERE id = ?', [p.amountFen, o.id]));
      expect((await orderView(o.id)).owedFen).toBe(p.amountFen);

      const sent: string[] = [];
      const listen = (m: { MT: string; RF?: string }) => sent.push(`${m.MT}:${m.RF ?? ''}`);
      sim.simulator.on('request', listen);
      await sweepAfter(1000);
      expect((await payment(p.id)).refund.state).toBe('unknown');
      await sweepAfter(31_000);
      sim.simulator.off('request', listen);
      expect((await payment(p.id)).refund).toEqual({ state: 'done', amountFen: p.amountFen });
      expect(sent).toContain(`Q0:${refundRf}`);
      expect(sent.filter((s) => /^(V0|R0|S0)/.test(s))).toEqual([]);
      expect((await orderView(o.id)).owedFen).toBe(0);
      const byRf = (await office('GET', `/v1/payments?rf=${refundRf}`)).body as { id: string }[];
      expect(byRf.map((x) => x.id)).toEqual([p.id]);
    });

    it('a refund the terminal never saw stays unknown (asked again later), and is not re-sent', async () => {
      const o = await order();
      sim.simulator.expect({ action: 'approve' });
      const p = await payCard(o.id, o.totalFen);
      await t.app.db.tx((m) =>
        exec(
          m,
          "UPDATE payment SET refund_state = 'in_progress', refund_fen = ?, refund_rf = ?, refund_txn_time = ? WHERE id = ?",
          [p.amountFen, `${p.rf.slice(0, 29)}-RF`, '20261125100000', p.id],
        ),
      );
      const sent: string[] = [];
      const listen = (m: { MT: string }) => sent.push(m.MT);
      sim.simulator.on('request', listen);
      await sweepAfter(1000);
      await sweepAfter(31_000);
      sim.simulator.off('request', listen);
      expect((await payment(p.id)).refund.state).toBe('unknown');
      expect(sent.filter((s) => /^(V0|R0|S0)/.test(s))).toEqual([]);
      await t.app.db.tx((m) => exec(m, 'UPDATE payment SET refund_state = NULL WHERE id = ?', [p.id]));
    });

    it('a reversal recorded as sent with no answer (crash) is sent again, the same one, and settles', async () => {
      const o = await order();
      sim.simulator.expect({ action: 'silence', bank: 'approved' });
      const p = await payCard(o.id, o.totalFen);
      expect(p.status).toBe('unknown');
      await t.app.db.tx((m) => exec(m, "UPDATE payment SET reversal_state = 'sent' WHERE id = ?", [p.id]));
      lane.busy = true;
      acq.sim.setFault(p.rf, '34');
      await sweepAfter(3600_000 + 1000); // past the grace period
      expect(acq.sim.reversedOrderIds.filter((id) => id === p.rf)).toHaveLength(1);
      expect(await payment(p.id)).toMatchObject({ status: 'reversed', reason: 'reversed_at_acquirer' });
    });
  });

  describe('evidence against a final status', () => {
    it("a person resolves declined, then the sweeper's verified approval arrives: disputed, money owed; resolve approved sells the goods", async () => {
      const o = await order();
      sim.simulator.expect({ action: 'silence', bank: 'approved' });
      const p = await payCard(o.id, o.totalFen);
      expect(p.status).toBe('unknown');
      lane.busy = true;
      const gate = gated.hold();
      clock.advance(1000);
      const sweeping = t.api('POST', '/v1/sweeps');
      await gate.answered; // the acquirer said approved; the verdict is not recorded yet
      const resolved = await office('POST', `/v1/payments/${p.id}/resolve`, {
        outcome: 'declined',
        note: 'customer says the card was not charged',
      });
      expect(resolved.status).toBe(200);
      expect(resolved.body.status).toBe('declined');
      gate.release();
      expect((await sweeping).body).toMatchObject({ approved: 0, disputed: 1 });

      const d = await payment(p.id);
      expect(d.status).toBe('disputed');
      expect(d.evidence.from).toBe('declined');
      expect(d.evidence.items[0]).toMatchObject({ source: 'acquirer', says: 'charged' });
      expect(await orderView(o.id)).toMatchObject({ status: 'reserved', owedFen: o.totalFen });
      const listed = (await office('GET', '/v1/payments?status=disputed&limit=100')).body.items as { id: string }[];
      expect(listed.map((x) => x.id)).toContain(p.id);
      expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
      // Past its hold the order still waits for the person: the disputed payment may have charged the customer.
      const until = Date.parse((await orderView(o.id)).expiresAt);
      clock.set(new Date(until + 1000));
      expect((await t.api('POST', '/v1/sweeps')).status).toBe(200);
      expect(await orderView(o.id)).toMatchObject({ status: 'reserved' });
      expect(await stock(o.sku)).toMatchObject({ onHand: 10, reserved: 2 });
      expect((await office('POST', `/v1/payments/${p.id}/resolve`, { outcome: 'declined', note: 'no' })).status).toBe(
        422,
      );

      const sold = await office('POST', `/v1/payments/${p.id}/resolve`, {
        outcome: 'approved',
        note: 'customer keeps the goods',
      });
      expect(sold.status).toBe(200);
      expect(sold.body).toMatchObject({ status: 'approved', resolution: { note: 'customer keeps the goods' } });
      expect(await orderView(o.id)).toMatchObject({ status: 'paid', owedFen: 0 });
      expect(await stock(o.sku)).toMatchObject({ onHand: 8, reserved: 0 });
    });

    it('the sweeper confirms approved first, then a person says declined: recorded, disputed; refund makes the money owed', async () => {
      const o = await order();
      sim.simulator.expect({ action: 'silence', bank: 'approved' });
      const p = await payCard(o.id, o.totalFen);
      lane.busy = true;
      await sweepAfter(1000);
      expect((await payment(p.id)).status).toBe('approved');
      const late = await office('POST', `/v1/payments/${p.id}/resolve`, {
        outcome: 'declined',
        note: 'statement shows nothing',
      });
      expect(late.status).toBe(409);
      expect(late.body.error).toMatchObject({
        code: 'payment_already_final',
        details: { recorded: true, disputed: true },
      });
      const d = await payment(p.id);
      expect(d).toMatchObject({ status: 'disputed', evidence: { from: 'approved' } });
      expect(d.evidence.items[0]).toMatchObject({ source: 'resolve', says: 'not_charged' });
      expect(await orderView(o.id)).toMatchObject({ status: 'paid', owedFen: 0 });

      const refund = await office('POST', `/v1/payments/${p.id}/resolve`, { outcome: 'refund', note: 'give it back' });
      expect(refund.status).toBe(200);
      expect(refund.body).toMatchObject({ status: 'approved', refund: { amountFen: o.totalFen } });
      expect(await orderView(o.id)).toMatchObject({ status: 'paid', owedFen: o.totalFen, overpaidFen: o.totalFen });
      expect(await stock(o.sku)).toMatchObject({ onHand: 8, reserved: 0 });
    });

    it('refund on a disputed payment refunded in part already is 409 refund_exists and changes nothing', async () => {
      const o = await order();
      sim.simulator.expect({ action: 'silence', bank: 'approved' });
      const p = await payCard(o.id, o.totalFen);
      lane.busy = true;
      await sweepAfter(1000);
      await office('POST', `/v1/payments/${p.id}/resolve`, { outcome: 'declined', note: 'statement shows nothing' });
      expect((await payment(p.id)).status).toBe('disputed');
      // Part of it went back already (an overpaid excess, say): a full refund would pay that part twice.
      await t.app.db.tx((m) =>
        exec(m, "UPDATE payment SET refund_state = 'done', refund_fen = 500 WHERE id = ?", [p.id]),
      );
      const refund = await office('POST', `/v1/payments/${p.id}/resolve`, { outcome: 'refund', note: 'give it back' });
      expect(refund.status).toBe(409);
      expect(refund.body.error).toMatchObject({
        code: 'refund_exists',
        details: { refundState: 'done', refundFen: 500 },
      });
      expect(await payment(p.id)).toMatchObject({ status: 'disputed' });
      expect(await orderView(o.id)).toMatchObject({ status: 'paid', overpaidFen: 0 });
      const kept = await office('POST', `/v1/payments/${p.id}/resolve`, {
        outcome: 'approved',
        note: 'settled by hand',
      });
      expect(kept.status).toBe(200);
    });

    it('dispute() for other capabilities (the T+1 file): declined → disputed, then already_disputed; approved or live → not_applicable', async () => {
      const o = await order();
      sim.simulator.expect({ action: 'decline', rc: '51' });
      const p = await payCard(o.id, o.totalFen);
      expect(p.status).toBe('declined');
      const ev = { source: 'recon' as const, detail: { file: 'T+1 20261125', line: 7 } };
      expect(await t.app.payments.dispute(p.id, ev, 'system:recon')).toBe('disputed');
      expect(await t.app.payments.dispute(p.id, ev, 'system:recon')).toBe('already_disputed');
      expect((await payment(p.id)).evidence.items).toHaveLength(2);
      expect((await orderView(o.id)).owedFen).toBe(o.totalFen);

      sim.simulator.expect({ action: 'silence', bank: 'approved' });
      const live = await payCard((await order()).id, o.totalFen);
      expect(await t.app.payments.dispute(live.id, ev, 'system:recon')).toBe('not_applicable');
      expect((await payment(live.id)).status).toBe('unknown');
      // Leave nothing live behind for later tests.
      await office('POST', `/v1/payments/${live.id}/resolve`, { outcome: 'declined', note: 'test cleanup' });

      const resolved = await office('POST', `/v1/payments/${p.id}/resolve`, {
        outcome: 'refund',
        note: 'order will not be paid by this card',
      });
      expect(resolved.body).toMatchObject({ status: 'approved', refund: { state: 'queued', amountFen: o.totalFen } });
      expect(await orderView(o.id)).toMatchObject({ status: 'reserved', paidFen: 0, owedFen: o.totalFen });
      expect(await t.app.payments.dispute(p.id, ev, 'system:recon')).toBe('not_applicable');
    });
  });

  describe('smaller items', () => {
    it("an approved payment keeps no stale reason, and checks counts the sweeper's terminal-only check", async () => {
      const o = await order();
      sim.simulator.expect({ action: 'silence', bank: 'approved' });
      const p = await payCard(o.id, o.totalFen);
      expect(p.status).toBe('unknown');
      expect(p.reason).toBeTruthy();
      await sweepAfter(1000);
      expect(await payment(p.id)).toMatchObject({ status: 'approved', reason: null, checks: 1 });
    });

    it("no internal error text in a payment's reason: a stable code, the details to the log", async () => {
      const o = await order();
      lane.saleThrows = new Error('EIO: read /dev/ttyUSB0 at 0x7f3a failed');
      const p = await payCard(o.id, o.totalFen);
      expect(p).toMatchObject({ status: 'unknown', reason: 'terminal_driver_failed' });
      expect(JSON.stringify(p)).not.toMatch(/EIO|ttyUSB/);
      lane.saleThrows = null;
      await office('POST', `/v1/payments/${p.id}/resolve`, { outcome: 'declined', note: 'test cleanup' });
    });

    it('GET /v1/payments: strict filters, cursor paging, unknown parameters named in a 400', async () => {
      clock.set(new Date('2026-11-26T02:00:00Z')); // a moment no other test uses
      const start = clock.now().getTime();
      const lanePays: string[] = [];
      for (let i = 0; i < 3; i++) {
        const o = await order(1, 100 + i);
        const r = await cashier('POST', `/v1/orders/${o.id}/payments`, {
          method: 'cash',
          amountFen: o.totalFen,
          lane: 'lane-1',
        });
        expect(r.status).toBe(201);
        lanePays.push(r.body.id);
        clock.advance(1000);
      }
      const from = encodeURIComponent(new Date(start).toISOString());
      const first = await office('GET', `/v1/payments?lane=lane-1&status=approved&from=${from}&limit=2`);
      expect(first.status).toBe(200);
      expect(first.body.items.map((p: { id: string }) => p.id)).toEqual(lanePays.slice(0, 2));
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const second = await office(
        'GET',
        `/v1/payments?lane=lane-1&status=approved&from=${from}&limit=2&cursor=${first.body.nextCursor}`,
      );
      expect(second.body).toEqual({ items: [expect.objectContaining({ id: lanePays[2] })], nextCursor: null });
      const to = encodeURIComponent(new Date(start + 500).toISOString());
      expect((await office('GET', `/v1/payments?from=${from}&to=${to}`)).body.map((p: { id: string }) => p.id)).toEqual(
        [lanePays[0]],
      );
      expect((await office('GET', '/v1/payments?lane=lane-9&limit=5')).body).toEqual({ items: [], nextCursor: null });
      expect((await office('GET', '/v1/payments?lane=lane-9')).body).toEqual([]); // no paging asked: the original plain list

      const unknown = await office('GET', '/v1/payments?status=approved&coupon=1');
      expect(unknown.status).toBe(400);
      expect(unknown.body.error.message).toMatch(/coupon/);
      for (const bad of [
        'status=paid',
        'limit=0',
        'limit=501',
        'from=yesterday',
        'cursor=not-a-cursor',
        'rf=a%20b',
        'status=unknown&status=approved',
      ]) {
        const r = await office('GET', `/v1/payments?${bad}`);
        expect([bad, r.status, r.body.error?.code]).toEqual([bad, 400, 'invalid_request']);
      }
    });
  });
});
