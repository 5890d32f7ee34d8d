/**
 * The whole topology as separate programs: `pos sim-terminal` on a pty (socat) reporting to
 * `pos sim-acquirer` over HTTP, and the service trusting the acquirer simulator's chain. When the
 * terminal stops answering, the sweeper learns the outcome from the acquirer instead.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autoDetect } from '@serialport/bindings-cpp';
import { SerialTerminal } from '../../src/terminal/serial-terminal';
import { HttpAcquirer } from '../../src/acquirer/acp-client';
import { ResponseVerifier } from '../../src/acquirer/acp-verify';
import { generateMerchantKey } from '../../src/acquirer/test-chain';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { ptyPair, simAcquirerProcess, simTerminalProcess, socatAvailable } from '../support/pty';

const haveSocat = socatAvailable();
if (!haveSocat && process.env.CI === 'true') throw new Error('socat is not installed');
const suite = haveSocat ? describe.each(testDbKinds()) : describe.skip.each(testDbKinds());

suite('terminal and acquirer simulators as programs, on $name', ({ name }) => {
  let t: TestApp;
  let acquirerSim: Awaited<ReturnType<typeof simAcquirerProcess>>;
  let pair: Awaited<ReturnType<typeof ptyPair>>;
  let sim: Awaited<ReturnType<typeof simTerminalProcess>>;
  let cashier: Api;

  beforeAll(async () => {
    const certDir = mkdtempSync(join(tmpdir(), 'pos-acq-'));
    acquirerSim = await simAcquirerProcess(certDir);
    pair = await ptyPair();
    sim = await simTerminalProcess(pair.b, ['--acquirer', acquirerSim.url]);
    const terminal = await new SerialTerminal('lane-1', {
      binding: autoDetect(),
      path: pair.a,
      tRespMs: 1000,
      tQueryMs: 500,
      reconnectMs: 200,
    }).start();
    const acquirer = new HttpAcquirer({
      baseUrl: acquirerSim.url,
      merId: '777290058110048',
      key: generateMerchantKey(),
      timeoutMs: 2000,
      verifier: new ResponseVerifier({
        rootPem: readFileSync(join(certDir, 'root.pem'), 'utf8'),
        middlePem: readFileSync(join(certDir, 'middle.pem'), 'utf8'),
        testMode: true,
      }),
    });
    t = await startTestApp(name, {
      terminals: new Map([['lane-1', terminal]]),
      acquirer,
      config: { terminalTRespMs: 1000, reversalGraceSeconds: 3600 },
    });
    cashier = await t.as('cashier');
    await t.api('PUT', '/v1/skus/TOPO', { name: 'topo', priceFen: 1500 });
    await t.api('POST', '/v1/stock/receipts', { lines: [{ sku: 'TOPO', qty: 5 }] });
  });
  afterAll(async () => {
    await t?.stop();
    await sim?.stop();
    pair?.stop();
    await acquirerSim?.stop();
  });

  it('silence, then the terminal goes away: the acquirer says approved (after 34 twice) → sold once', async () => {
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'TOPO', qty: 1 }] })).body;
    await fetch(`${sim.control}/rules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'silence', bank: 'approved' }),
    });
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen: 1500, lane: 'lane-1' });
    const p = (await cashier('GET', `/v1/payments/${r.body.id}?wait=10`)).body;
    expect(p.status).toBe('unknown');
    // The bank (kept by the acquirer simulator) heard of it from the terminal simulator.
    expect(
      ((await (await fetch(`${acquirerSim.url}/sim/bank/txns/${p.rf}`)).json()) as { status: string }).status,
    ).toBe('approved');
    await sim.stop();
    await fetch(`${acquirerSim.url}/sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderId: p.rf, fault: '34', count: 2 }),
    });

    const statuses: string[] = [];
    for (let i = 0; i < 8; i++) {
      await new Promise((res) => setTimeout(res, 1100 * 2 ** Math.min(i, 2)));
      await t.api('POST', '/v1/sweeps');
      const now = (await cashier('GET', `/v1/payments/${p.id}`)).body;
      statuses.push(now.status);
      if (now.status !== 'unknown') break;
      expect((await cashier('GET', '/v1/stock/TOPO')).body).toMatchObject({ onHand: 5, reserved: 1 });
    }
    expect(statuses.at(-1)).toBe('approved');
    expect(statuses.filter((s) => s === 'unknown').length).toBeGreaterThanOrEqual(2);
    expect((await cashier('GET', '/v1/stock/TOPO')).body).toMatchObject({ onHand: 4, reserved: 0 });
    expect(await t.check()).toEqual([]);
  }, 60_000);
});
