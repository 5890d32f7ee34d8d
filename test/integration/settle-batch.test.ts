/**
 * Verdicts many to a transaction (src/payments/settle-batch.ts): the sweeper's batch leaves exactly
 * the rows that the same verdicts leave one transaction each — two approvals of one order (the
 * second paying it, or overpaying it), a failure, a recheck parked in suspense, a recheck of an
 * attempt settled meanwhile — and a refused verdict is that verdict's answer alone.
 */
import { randomUUID } from 'node:crypto';
import { Outcome } from '../../src/db/batch';
import { rows } from '../../src/db/db';
import { DomainError } from '../../src/shared/errors';
import { SettleVerdict } from '../../src/payments/settle-batch';
import { startTestApp, TestApp } from '../support/app';
import { testDbKinds } from '../support/dbs';

describe.each(testDbKinds())('verdicts in one transaction, on $name', ({ name }) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(name);
    await t.app.inventory.upsertSku({ sku: 'SB', name: 'settle batch', priceFen: 500 }, 'test');
    await t.app.inventory.receive([{ sku: 'SB', qty: 100 }], 'rcpt-sb', 'test');
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  /** An order of `qty` × 5.00 with card attempts of the given amounts and statuses. */
  async function order(qty: number, attempts: [number, string][]): Promise<{ orderId: string; payments: string[] }> {
    const o = await t.app.orders.create({ lane: 'lane-1', lines: [{ sku: 'SB', qty }] }, 'test');
    const payments: string[] = [];
    const now = Date.now();
    for (const [amount, status] of attempts) {
      const id = randomUUID();
      payments.push(id);
      await t.fdb.db.ds.query(
        `INSERT INTO payment (id, order_id, method, amount_fen, status, lane, rf, acked, checks, next_check_at, unknown_since, created_by, created_at, updated_at)
         VALUES (?, ?, 'card', ?, ?, 'lane-1', ?, 1, 2, ?, ?, 'test', ?, ?)`,
        [id, o.id, amount, status, `SB${id.slice(0, 8)}`, 1000, now, now, now],
      );
    }
    return { orderId: o.id, payments };
  }

  /** The same scenario, built afresh: its verdicts, and what to read back afterwards. */
  async function scenario() {
    const paid = await order(2, [
      [500, 'unknown'],
      [500, 'unknown'],
    ]);
    const over = await order(1, [
      [500, 'unknown'],
      [500, 'suspense'],
    ]);
    const declined = await order(1, [[500, 'unknown']]);
    const parked = await order(1, [[500, 'unknown']]);
    const settledMeanwhile = await order(1, [[500, 'declined']]);
    const facts = { rc: '00', queryId: 'Q1', traceNo: '000123' };
    const approve = (o: { orderId: string; payments: string[] }, i: number): SettleVerdict => ({
      kind: 'approve',
      paymentId: o.payments[i],
      orderId: o.orderId,
      lane: 'lane-1',
      facts,
      actor: 'system:sweeper:acquirer',
      checked: true,
    });
    const verdicts: SettleVerdict[] = [
      approve(paid, 0),
      {
        kind: 'fail',
        paymentId: declined.payments[0],
        to: 'declined',
        info: { rc: '51', reason: 'declined' },
        actor: 'system:sweeper',
        checked: true,
      },
      approve(over, 0),
      approve(paid, 1),
      approve(settledMeanwhile, 0),
      approve(over, 1),
      {
        kind: 'recheck',
        paymentId: parked.payments[0],
        from: 'unknown',
        set: { checks: 3, next_check_at: 1, claimed_by: null, claim_until: null, reason: 'no answer' },
        park: { reason: 'no answer' },
      },
      {
        kind: 'recheck',
        paymentId: settledMeanwhile.payments[0],
        from: 'unknown',
        set: { checks: 9, next_check_at: 1, claimed_by: null, claim_until: null, reason: 'late' },
        park: null,
      },
    ];
    const orders = [paid, over, declined, parked, settledMeanwhile];
    return { verdicts, orders };
  }

  /** What the verdicts left, without ids and times: payments, orders, sold lines and audit actions per order, in scenario order. */
  async function state(orders: { orderId: string; payments: string[] }[]) {
    return t.app.db.read(async (m) => {
      const out = [];
      for (const o of orders) {
        const [ord] = await rows(m, 'SELECT status, paid_fen, overpaid_fen FROM orders WHERE id = ?', [o.orderId]);
        const lines = await rows(m, 'SELECT reservation FROM order_line WHERE order_id = ?', [o.orderId]);
        const pays: Record<string, any>[] = [];
        for (const id of o.payments) {
          const [p] = await rows<Record<string, unknown>>(
            m,
            'SELECT status, checks, reason, rc, query_id, trace_no, refund_state, refund_fen, next_check_at FROM payment WHERE id = ?',
            [id],
          );
          const audits = await rows<{ action: string; after: string }>(
            m,
            'SELECT action, after FROM audit_log WHERE entity_id = ? ORDER BY id',
            [id],
          );
          pays.push({
            ...p,
            checks: Number(p.checks),
            refund_fen: p.refund_fen == null ? null : Number(p.refund_fen),
            next_check_at: p.next_check_at == null ? null : Number(p.next_check_at),
            audits: audits.map((a) => [a.action, JSON.parse(String(a.after))]),
          });
        }
        const orderAudits = await rows(m, 'SELECT action, after FROM audit_log WHERE entity_id = ? ORDER BY id', [
          o.orderId,
        ]);
        out.push({
          order: { status: ord.status, paid: Number(ord.paid_fen), overpaid: Number(ord.overpaid_fen) },
          lines: lines.map((l) => l.reservation),
          pays,
          // A payment named in an order's audit row by its place in the scenario, not its id.
          orderAudits: orderAudits
            .filter((a) => a.action !== 'create')
            .map((a) => {
              const after = JSON.parse(String(a.after));
              if (after.paymentId) after.paymentId = o.payments.indexOf(after.paymentId);
              return [a.action, after];
            }),
        });
      }
      return out;
    });
  }

  const answer = (o: Outcome<boolean>) => (o.ok ? o.value : (o.error as DomainError).code);

  it('a batch leaves what the same verdicts leave one at a time, and a refusal is its own verdict’s answer', async () => {
    const batch = await scenario();
    const outcomes = await t.app.db.tx((m) => t.app.payments.settleManyIn(m, batch.verdicts));
    expect(outcomes.map(answer)).toEqual([
      true,
      true,
      true,
      true,
      'payment_transition_refused',
      true,
      true, // parked
      false, // settled meanwhile: nothing scheduled
    ]);

    const single = await scenario();
    const one: unknown[] = [];
    for (const v of single.verdicts)
      one.push(await t.app.db.tx((m) => t.app.payments.settleOneIn(m, v)).catch((e: DomainError) => e.code));
    expect(one).toEqual(outcomes.map(answer));

    const [b, s] = [await state(batch.orders), await state(single.orders)];
    expect(b).toEqual(s);
    const [paid, over, declined, parked, meanwhile] = b;
    expect(paid.order).toEqual({ status: 'paid', paid: 1000, overpaid: 0 });
    expect(paid.lines).toEqual(['sold']);
    expect(paid.pays.map((p) => [p.status, p.checks, p.query_id])).toEqual([
      ['approved', 3, 'Q1'],
      ['approved', 3, 'Q1'],
    ]);
    expect(paid.orderAudits.map((a) => a[0])).toEqual(['paid']);
    // The second approval found the order paid: all of it is owed back to the card.
    expect(over.order).toEqual({ status: 'paid', paid: 500, overpaid: 500 });
    expect(over.pays.map((p) => [p.status, p.refund_state, p.refund_fen])).toEqual([
      ['approved', null, null],
      ['approved', 'queued', 500],
    ]);
    expect(over.orderAudits).toEqual([
      ['paid', { status: 'paid', paidFen: 500 }],
      ['overpaid', { paymentId: 1, amountFen: 500, orderStatus: 'paid' }],
    ]);
    expect(declined.pays[0]).toMatchObject({ status: 'declined', rc: '51', reason: 'declined', checks: 3 });
    expect(declined.lines).toEqual(['active']); // the stock stays reserved for another try
    expect(parked.pays[0]).toMatchObject({ status: 'suspense', checks: 3, next_check_at: 1 });
    expect(parked.pays[0].audits.map((a: unknown[]) => a[0])).toEqual(['suspense']);
    expect(meanwhile.pays[0]).toMatchObject({ status: 'declined', checks: 2, audits: [] });
  });

  it('a guard that does not hold fails the whole batch: nothing of it is written', async () => {
    const { verdicts, orders } = await scenario();
    const before = await state(orders);
    // The stock row lost its reservations behind the batch's back: the sale's guarded UPDATE finds less reserved.
    const [{ reserved }] = await t.app.db.read((m) => rows(m, "SELECT reserved FROM sku WHERE sku = 'SB'"));
    await t.fdb.db.ds.query("UPDATE sku SET reserved = 0 WHERE sku = 'SB'");
    await expect(t.app.db.tx((m) => t.app.payments.settleManyIn(m, verdicts))).rejects.toThrow(/found less reserved/);
    await t.fdb.db.ds.query("UPDATE sku SET reserved = ? WHERE sku = 'SB'", [Number(reserved)]);
    expect(await state(orders)).toEqual(before);
  });
});
