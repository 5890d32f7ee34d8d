/**
 * End to end through a real pty pair (socat) with `pos sim-terminal` as a separate process: the
 * service drives the lane over the OS serial binding, exactly as with a terminal on a cable.
 */
import { autoDetect } from '@serialport/bindings-cpp';
import { SerialTerminal } from '../../src/terminal/serial-terminal';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { ptyPair, simTerminalProcess, socatAvailable } from '../support/pty';

const T_RESP = 1500;
const haveSocat = socatAvailable();
if (!haveSocat) {
  const msg = '!!! socat is not installed: the pty end-to-end suite cannot run (apt-get install -y socat)';
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(msg);
}
const suite = haveSocat ? describe.each(testDbKinds()) : describe.skip.each(testDbKinds());

suite('serial lane over a pty on $name', ({ name }) => {
  let t: TestApp;
  let pair: Awaited<ReturnType<typeof ptyPair>>;
  let sim: Awaited<ReturnType<typeof simTerminalProcess>>;
  let terminal: SerialTerminal;
  let cashier: Api;
  let office: Api;

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
  let seq = 0;
  async function order(): Promise<{ id: string; sku: string; totalFen: number }> {
    const sku = `PTY-${name}-${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen: 880 });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 5 }] });
    const o = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] });
    return { id: o.body.id, sku, totalFen: o.body.totalFen };
  }
  const stock = async (sku: string) => (await cashier('GET', `/v1/stock/${sku}`)).body;
  async function payCard(orderId: string, amountFen: number) {
    const r = await cashier('POST', `/v1/orders/${orderId}/payments`, { method: 'card', amountFen, lane: 'lane-1' });
    expect(r.status).toBe(202);
    return (await cashier('GET', `/v1/payments/${r.body.id}?wait=15`)).body;
  }
  async function sweepUntilSettled(paymentId: string): Promise<any> {
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 1100));
      await t.api('POST', '/v1/sweeps');
      const p = (await cashier('GET', `/v1/payments/${paymentId}`)).body;
      if (p.status !== 'unknown') return p;
    }
    return (await cashier('GET', `/v1/payments/${paymentId}`)).body;
  }

  it('approve, with prompts shown on the payment: sold once', async () => {
    const o = await order();
    await rules({ action: 'approve', prompts: ['请插卡或挥卡', '请输入密码'] });
    const p = await payCard(o.id, o.totalFen);
    expect(p).toMatchObject({ status: 'approved', prompts: ['请插卡或挥卡', '请输入密码'] });
    expect(p.card.masked).toBe('622848******1234');
    expect(await stock(o.sku)).toMatchObject({ onHand: 4, reserved: 0 });
  });

  it('decline 51: failed, stock still reserved', async () => {
    const o = await order();
    await rules({ action: 'decline', rc: '51' });
    expect(await payCard(o.id, o.totalFen)).toMatchObject({ status: 'declined', rc: '51' });
    expect(await stock(o.sku)).toMatchObject({ onHand: 5, reserved: 1 });
  });

  it('C1: cancelled at the terminal is a confirmed failure', async () => {
    const o = await order();
    await rules({ action: 'C1' });
    expect(await payCard(o.id, o.totalFen)).toMatchObject({ status: 'declined', rc: 'C1' });
  });

  it('NAK then resend: approved once', async () => {
    const o = await order();
    await rules({ action: 'approve', nakFirst: true });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('approved');
    const journal = (await (await fetch(`${sim.control}/journal`)).json()) as { rf: string; status: string }[];
    expect(journal.filter((j) => j.rf === p.rf)).toEqual([expect.objectContaining({ status: 'A' })]);
  });

  it('noise between frames: approved', async () => {
    const o = await order();
    await rules({ action: 'approve', noise: true, prompts: ['请插卡'] });
    expect((await payCard(o.id, o.totalFen)).status).toBe('approved');
  });

  it('98 → unknown; the sweep asks Q0, signs in to flush the reversal, Q0 answers R → released', async () => {
    const o = await order();
    await rules({ action: '98' });
    const p = await payCard(o.id, o.totalFen);
    expect(p).toMatchObject({ status: 'unknown', rc: '98' });
    expect(await stock(o.sku)).toMatchObject({ reserved: 1 });
    expect((await sweepUntilSettled(p.id)).status).toBe('reversed');
    expect(await stock(o.sku)).toMatchObject({ onHand: 5, reserved: 1 });
  });

  it('silence → unknown after T_RESP, stock held', async () => {
    const o = await order();
    await rules({ action: 'silence', bank: 'none' });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('unknown');
    expect(await stock(o.sku)).toMatchObject({ onHand: 5, reserved: 1 });
  });

  it('busy terminal → not executed', async () => {
    const o = await order();
    await rules({ action: 'BZ' });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('declined');
    expect(p.reason).toMatch(/not executed/);
  });

  it('port closed mid-transaction → unknown, stock held', async () => {
    const o = await order();
    await rules({ action: 'close', prompts: ['请插卡'] });
    const p = await payCard(o.id, o.totalFen);
    expect(p.status).toBe('unknown');
    expect(await stock(o.sku)).toMatchObject({ onHand: 5, reserved: 1 });
  });
});
