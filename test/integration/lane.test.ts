/**
 * The lane's server side on both databases: receipts printed through the real driver and the
 * printer simulator (in-process null-modem), the drawer on cash only, a printer out of paper never
 * blocking a sale, reprints, barcodes, the payment event stream, and the key's identity.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedTerminal, SimulatedTerminal } from '../../src/terminal/in-process';
import { createSimulatedPrinter, SimulatedPrinter } from '../../src/printer/lanes';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { orderCodeOf } from '../../src/receipts/order-code';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';

const T_RESP = 700;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.each(testDbKinds())('lane: receipts, printer, barcodes, events on $name', ({ name }) => {
  let t: TestApp;
  let term: SimulatedTerminal;
  let printer: SimulatedPrinter;
  let dir: string;
  let cashier: Api;
  let office: Api;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pos-receipts-'));
    term = await createSimulatedTerminal('lane-1', { bank: new MemorySimBank(), tRespMs: T_RESP, tAckMs: 150 });
    printer = await createSimulatedPrinter('lane-1', dir, { tStatusMs: 300 });
    t = await startTestApp(name, {
      terminals: new Map([['lane-1', term.terminal]]),
      config: { terminalTRespMs: T_RESP, reversalGraceSeconds: 3600 },
      deps: {
        printers: new Map([['lane-1', printer.printer]]),
        lane: { printPollMs: 100, printRetryMs: 200, merchantName: '测试商店' },
      },
    });
    cashier = await t.as('cashier', 'lane-1');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
    await printer?.close();
    await term?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    printer.simulator.paperOut = false;
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function order(priceFen = 1250, qty = 2): Promise<{ id: string; sku: string; totalFen: number }> {
    const sku = `LANE-${name}-${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: `矿泉水 ${seq}`, priceFen });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 10 }] });
    const o = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty }] });
    expect(o.status).toBe(201);
    return { id: o.body.id, sku, totalFen: o.body.totalFen };
  }
  const receiptsSoFar = () => printer.simulator.receipts.length;
  const nextReceipt = (before: number) => until('a printed receipt', async () => printer.simulator.receipts[before]);

  it('cash sale: the receipt file has the lines, the total and the order barcode; the drawer opens once', async () => {
    const o = await order(1250, 2);
    const before = receiptsSoFar();
    const kicks = printer.simulator.drawerKicks.length;
    const pay = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'cash',
      amountFen: 2500,
      lane: 'lane-1',
    });
    expect(pay.status).toBe(201);
    const printed = await nextReceipt(before);
    expect(readFileSync(printed.file, 'utf8')).toBe(printed.text);
    expect(printed.text).toContain('测试商店');
    expect(printed.text).toMatch(/合计 TOTAL +25\.00/);
    expect(printed.text).toMatch(/现金 CASH +25\.00/);
    expect(printed.text).toContain(`矿泉水 ${seq}`);
    expect(printed.text).toContain(`[条码 ${orderCodeOf(o.id)}]`);
    expect(printed.text).not.toContain('重印');
    expect(printed.text).not.toContain('银联');
    expect(printer.simulator.drawerKicks.length).toBe(kicks + 1);
    const text = await cashier('GET', `/v1/orders/${o.id}/receipt`);
    expect(text.status).toBe(200);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text.body).toBe(printed.text);
  });

  it('card sale: a UnionPay slip with the masked card, and no drawer kick', async () => {
    const o = await order(3300, 1);
    const before = receiptsSoFar();
    const kicks = printer.simulator.drawerKicks.length;
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'card',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    expect(r.status).toBe(202);
    const p = (await cashier('GET', `/v1/payments/${r.body.id}?wait=10`)).body;
    expect(p.status).toBe('approved');
    const printed = await nextReceipt(before);
    expect(printed.text).toContain('622848******1234');
    expect(printed.text).not.toMatch(/622848\d{6,}/);
    for (const [label, value] of [
      ['商户编号', p.terminal.merchantId],
      ['终端编号', p.terminal.terminalId],
      ['批次号', p.terminal.batchNo],
      ['凭证号', p.terminal.traceNo],
      ['参考号', p.terminal.rrn],
      ['授权码', p.terminal.authCode],
    ] as const) {
      expect(printed.text).toMatch(new RegExp(`${label} +${value}`));
    }
    expect(printed.text).toMatch(/卡类型 +借记卡/);
    expect(printed.text).toMatch(/金额 AMOUNT +RMB 33\.00/);
    await sleep(300);
    expect(printer.simulator.drawerKicks.length).toBe(kicks);
  });

  it('printer out of paper: the sale completes, the drawer still opens, the receipt prints once the paper is back', async () => {
    printer.simulator.paperOut = true;
    const o = await order(500, 1);
    const before = receiptsSoFar();
    const kicks = printer.simulator.drawerKicks.length;
    const pay = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'cash',
      amountFen: 500,
      lane: 'lane-1',
    });
    expect(pay.status).toBe(201);
    expect((await cashier('GET', `/v1/orders/${o.id}`)).body.status).toBe('paid');
    await until('the drawer kick', async () => printer.simulator.drawerKicks.length > kicks);
    const waiting = await until('the printer status', async () => {
      const s = (await cashier('GET', '/v1/printers/lane-1')).body;
      return s.queued >= 1 && s.lastError ? s : null;
    });
    expect(waiting).toMatchObject({ lane: 'lane-1', configured: true, state: 'paper_out' });
    expect(waiting.lastError).toMatch(/paper out/);
    expect(await (await fetch(`${t.url}/metrics`)).text()).toContain('pos_print_jobs_waiting{lane="lane-1"} 1');
    await sleep(400);
    expect(receiptsSoFar()).toBe(before);

    printer.simulator.paperOut = false;
    const printed = await nextReceipt(before);
    expect(printed.text).toMatch(/合计 TOTAL +5\.00/);
    expect(printer.simulator.drawerKicks.length).toBe(kicks + 1); // not kicked a second time with the receipt
    // The job is marked printed just after the bytes reach the printer.
    const after = await until('the queue to empty', async () => {
      const s = (await cashier('GET', '/v1/printers/lane-1')).body;
      return s.queued === 0 ? s : null;
    });
    expect(after).toMatchObject({ state: 'ready', queued: 0, lastError: null });
    expect(await (await fetch(`${t.url}/metrics`)).text()).toContain('pos_print_jobs_waiting{lane="lane-1"} 0');
  });

  it('a reprint is queued, marked 重印, and prints without opening the drawer', async () => {
    const o = await order(800, 1);
    const before = receiptsSoFar();
    await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 800, lane: 'lane-1' });
    const first = await nextReceipt(before);
    const kicks = printer.simulator.drawerKicks.length;
    const r = await cashier('POST', `/v1/orders/${o.id}/receipt/reprint`);
    expect(r.status).toBe(202);
    const again = await nextReceipt(before + 1);
    expect(again.text).toContain('重印');
    expect(again.text.replace(/.*重印.*\n/g, '')).toBe(first.text.replace(/^销售小票\n/m, ''));
    expect(printer.simulator.drawerKicks.length).toBe(kicks);
    const audited = await t.fdb.db.ds.query(
      "SELECT action, actor FROM audit_log WHERE entity = 'print_job' AND entity_id = ?",
      [r.body.jobId],
    );
    expect(audited).toEqual([{ action: 'reprint', actor: expect.stringMatching(/^key:/) }]);
    const otherLane = await t.as('cashier', 'lane-9');
    expect((await otherLane('POST', `/v1/orders/${o.id}/receipt/reprint`)).body.error.code).toBe('wrong_lane');
    expect((await cashier('POST', `/v1/orders/${o.id}/receipt/reprint`, { copies: 2 })).status).toBe(400);
  });

  it('no receipt before the order is paid; a reprint of it is refused and queues nothing', async () => {
    const o = await order();
    expect((await cashier('GET', `/v1/orders/${o.id}/receipt`)).body.error.code).toBe('order_not_paid');
    const r = await cashier('POST', `/v1/orders/${o.id}/receipt/reprint`);
    expect(r.status).toBe(409);
    expect((await cashier('GET', '/v1/printers/lane-1')).body.queued).toBe(0);
    expect((await cashier('GET', '/v1/orders/6a4a0a4e-0000-4000-8000-000000000000/receipt')).status).toBe(404);
    expect((await cashier('GET', '/v1/orders/nope/receipt')).status).toBe(400);
    await cashier('POST', `/v1/orders/${o.id}/cancel`);
  });

  it('a lane-bound key sees only its lane printer', async () => {
    expect((await cashier('GET', '/v1/printers/lane-2')).body.error.code).toBe('lane_mismatch');
    expect((await office('GET', '/v1/printers/lane-2')).body).toMatchObject({
      configured: false,
      state: 'away',
      queued: 0,
    });
    expect((await office('GET', '/v1/printers')).body).toEqual({
      items: [expect.objectContaining({ lane: 'lane-1', configured: true, state: 'ready' })],
    });
    expect((await cashier('GET', '/v1/printers')).status).toBe(403);
  });

  describe('barcodes', () => {
    it('PUT /v1/skus/:sku takes an EAN-13 with its check digit verified, and the scan finds the SKU', async () => {
      const ok = await office('PUT', '/v1/skus/BC-1', { name: '可乐', priceFen: 300, barcode: '6901234567892' });
      expect(ok.status).toBe(200);
      expect(ok.body.barcode).toBe('6901234567892');
      expect((await cashier('GET', '/v1/barcodes/6901234567892')).body).toMatchObject({
        kind: 'sku',
        sku: 'BC-1',
        name: '可乐',
        priceFen: 300,
      });
      expect((await cashier('GET', '/v1/barcodes/BC-1')).body).toMatchObject({ kind: 'sku', sku: 'BC-1' });
      // Left out, the barcode stays.
      expect((await office('PUT', '/v1/skus/BC-1', { name: '可乐', priceFen: 350 })).body.barcode).toBe(
        '6901234567892',
      );
    });

    it('a bad check digit is a 400 that changes nothing; a taken barcode a 409', async () => {
      const bad = await office('PUT', '/v1/skus/BC-2', { name: '雪碧', priceFen: 300, barcode: '6901234567891' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/check digit/);
      expect((await cashier('GET', '/v1/stock/BC-2')).status).toBe(404);
      const taken = await office('PUT', '/v1/skus/BC-2', { name: '雪碧', priceFen: 300, barcode: '6901234567892' });
      expect(taken.status).toBe(409);
      expect(taken.body.error.code).toBe('barcode_taken');
      expect((await cashier('GET', '/v1/stock/BC-2')).status).toBe(404);
      expect((await cashier('GET', '/v1/barcodes/6901234567891')).body.error.code).toBe('invalid_barcode');
      expect((await cashier('GET', '/v1/barcodes/4006381333931')).status).toBe(404);
    });

    it('null removes a barcode', async () => {
      await office('PUT', '/v1/skus/BC-3', { name: '茶', priceFen: 400, barcode: '4006381333931' });
      expect(
        (await office('PUT', '/v1/skus/BC-3', { name: '茶', priceFen: 400, barcode: null })).body.barcode,
      ).toBeNull();
      expect((await cashier('GET', '/v1/barcodes/4006381333931')).status).toBe(404);
    });

    it('the order code off a receipt resolves to the order', async () => {
      const o = await order();
      expect((await cashier('GET', `/v1/barcodes/${orderCodeOf(o.id)}`)).body).toEqual({
        kind: 'order',
        orderId: o.id,
        code: orderCodeOf(o.id),
      });
      await cashier('POST', `/v1/orders/${o.id}/cancel`);
    });
  });

  it('GET /v1/me tells the role and lane of the key', async () => {
    expect((await cashier('GET', '/v1/me')).body).toMatchObject({
      role: 'cashier',
      lane: 'lane-1',
      shiftsRequired: false,
    });
    expect((await office('GET', '/v1/me')).body).toMatchObject({ role: 'backoffice', lane: null });
  });

  it('payment events: prompts as they arrive, then the final status, then the stream ends', async () => {
    const o = await order(4100, 1);
    term.simulator.expect({ action: 'approve', prompts: ['请插卡或挥卡', '请输入密码'], delayMs: 150 });
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'card',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    const key = (await t.api('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' })).body.key;
    const res = await fetch(`${t.url}/v1/payments/${r.body.id}/events`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text(); // ends once the payment is final
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n/g)].map((m) => ({
      event: m[1],
      data: JSON.parse(m[2]),
    }));
    expect(events.filter((e) => e.event === 'prompt').map((e) => e.data.text)).toEqual(['请插卡或挥卡', '请输入密码']);
    expect(events[0]).toMatchObject({ event: 'status' });
    expect(events[events.length - 1]).toMatchObject({ event: 'status', data: { status: 'approved', id: r.body.id } });
  });

  it('payment events: an outcome committed between the stream’s first read and its subscription still ends the stream', async () => {
    const o = await order(4150, 1);
    term.simulator.expect({ action: 'approve' });
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'card',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    expect(r.body.status).toBe('pending');
    // The stream's first read gives `pending` (as read before the approval: the 202's committed view), and
    // returns only once the terminal's approval is committed and notified — the interleaving in which the
    // notification reaches no listener.
    const payments = t.app.payments;
    const view = payments.view.bind(payments);
    let first = true;
    payments.view = async (...args: Parameters<typeof view>) => {
      if (!first || args[0] !== r.body.id) return view(...args);
      first = false;
      await until('the approval', async () => (await view(r.body.id)).status === 'approved');
      return r.body;
    };
    try {
      const key = (await t.api('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' })).body.key;
      const res = await fetch(`${t.url}/v1/payments/${r.body.id}/events`, {
        headers: { authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text(); // ends once the payment is final
      const statuses = [...text.matchAll(/event: status\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]).status);
      expect(statuses[0]).toBe('pending');
      expect(statuses[statuses.length - 1]).toBe('approved');
    } finally {
      payments.view = view;
    }
  });

  it('payment events: an unknown outcome keeps the stream open; a screen that goes away leaves no listener behind', async () => {
    const o = await order(4200, 1);
    term.simulator.expect({ action: 'silence', bank: 'none' });
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, {
      method: 'card',
      amountFen: o.totalFen,
      lane: 'lane-1',
    });
    expect((await cashier('GET', `/v1/payments/${r.body.id}?wait=10`)).body.status).toBe('unknown');
    const changes = (t.app.payments as unknown as { changes: import('node:events').EventEmitter }).changes;
    const ctrl = new AbortController();
    const res = await fetch(`${t.url}/v1/payments/${r.body.id}/events`, {
      headers: {
        authorization: `Bearer ${(await t.api('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' })).body.key}`,
      },
      signal: ctrl.signal,
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/event: status\ndata: .*"status":"unknown"/);
    expect(changes.listenerCount(r.body.id)).toBe(1);
    ctrl.abort();
    for (let i = 0; i < 40 && changes.listenerCount(r.body.id) > 0; i++) await sleep(25);
    expect(changes.listenerCount(r.body.id)).toBe(0);
    // The goods stay held; this test leaves the order as it is (unknown is not for the lane to end).
  });

  it('payment events of another lane are refused', async () => {
    const other = await t.as('cashier', 'lane-9');
    const o = await order(100, 1);
    const p = await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 100, lane: 'lane-1' });
    expect((await other('GET', `/v1/payments/${p.body.id}/events`)).body.error.code).toBe('lane_mismatch');
  });
});
