/**
 * The cashier screen in Chromium against the service with the in-process simulated terminal
 * (DEMO_SCRIPT: approves with prompts; ¥51.00 declines; ¥44.00 gets no final answer).
 * One test per screen; each leaves a screenshot in test-results/.
 */
import type { Browser, Page } from 'playwright-core';
import { createSimulatedTerminal, SimulatedTerminal } from '../../src/terminal/in-process';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { DEMO_SCRIPT } from '../../src/adapters';
import { Api, startTestApp, TestApp } from '../support/app';
import { buildPages, launch, newPage, shot, signIn } from '../support/browser';
import { orderCodeOf } from '../../src/receipts/order-code';

/** Browser globals, used only inside page.evaluate callbacks (they run in Chromium, not in Node). */
declare const document: any, window: any, MutationObserver: any;

const T_RESP = 1500;

describe('lane (cashier screen) in Chromium', () => {
  let t: TestApp;
  let sim: SimulatedTerminal;
  let browser: Browser;
  let office: Api;
  let cashier: Api;
  let cashierKey: string;
  let seq = 0;

  beforeAll(async () => {
    await buildPages();
    sim = await createSimulatedTerminal('lane-1', {
      bank: new MemorySimBank(),
      tRespMs: T_RESP,
      tAckMs: 150,
      script: DEMO_SCRIPT,
    });
    t = await startTestApp('sqlite', {
      terminals: new Map([['lane-1', sim.terminal]]),
      config: { terminalTRespMs: T_RESP, reversalGraceSeconds: 3600 },
    });
    office = await t.as('backoffice');
    cashierKey = (await t.api('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' })).body.key;
    cashier = await t.as('cashier', 'lane-1');
    browser = await launch();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    await sim?.close();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  async function sku(priceFen: number, qty = 10): Promise<string> {
    const code = `LANE-${++seq}`;
    await office('PUT', `/v1/skus/${code}`, { name: `商品${seq}`, priceFen });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku: code, qty }] });
    return code;
  }
  const level = async (code: string) => (await office('GET', `/v1/stock/${code}`)).body;
  /** Waits until the server's answer settles (the page acts asynchronously). */
  async function eventually<T>(read: () => Promise<T>, want: T, ms = 10_000): Promise<void> {
    const until = Date.now() + ms;
    let got = await read();
    while (got !== want && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      got = await read();
    }
    expect(got).toBe(want);
  }

  async function openLane(): Promise<Page> {
    const page = await newPage(browser);
    await signIn(page, `${t.url}/lane?lane=lane-1`, cashierKey);
    await page.getByTestId('scan').waitFor();
    return page;
  }
  /** Types like a keyboard-wedge scanner: fast, then Enter, into whatever has the focus. */
  async function scan(page: Page, code: string) {
    await page.keyboard.type(code, { delay: 5 });
    await page.keyboard.press('Enter');
  }

  it('scan → cash → change: the total and the change come from the server, stock is sold', async () => {
    const a = await sku(1250);
    const b = await sku(300);
    const page = await openLane();
    await scan(page, a);
    await scan(page, a);
    await scan(page, b);
    await page.locator(`[data-testid=basket-line][data-sku="${a}"][data-qty="2"]`).waitFor();
    await page.locator('[data-testid=total][data-fen="2800"]').waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('scan');
    await shot(page, 'lane-basket');

    await page.keyboard.press('F2');
    await page.getByTestId('cash-tendered').fill('50');
    await page.getByTestId('cash-confirm').click();
    const done = page.getByTestId('sale-complete');
    await done.waitFor();
    expect(await page.getByTestId('change-due').getAttribute('data-fen')).toBe('2200');
    await shot(page, 'lane-cash-complete');
    const orderId = await done.getAttribute('data-order-id');
    const order = (await office('GET', `/v1/orders/${orderId}`)).body;
    expect(order).toMatchObject({ status: 'paid', totalFen: 2800, paidFen: 2800 });
    expect(await level(a)).toMatchObject({ onHand: 8, reserved: 0 });

    await page.getByTestId('new-sale').click();
    await page.locator('[data-testid=total][data-fen="0"]').waitFor();
    await page.close();
  });

  it('card approved: the terminal prompts show live, then the sale completes', async () => {
    const a = await sku(2000);
    const page = await openLane();
    await scan(page, a);
    await page.locator('[data-testid=total][data-fen="2000"]').waitFor();
    // Records what the prompt line said while the attempt was still pending: prompts must show live, not after the fact.
    await page.evaluate(() => {
      const seen: string[] = ((window as any).__prompts = []);
      new MutationObserver(() => {
        const st = document.querySelector('[data-testid=payment-status]')?.getAttribute('data-status');
        const p = document.querySelector('[data-testid=terminal-prompt]')?.textContent ?? '';
        if (st === 'pending') seen.push(p);
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await page.getByTestId('pay-card').click();
    await page.getByTestId('sale-complete').waitFor();
    const seen: string[] = await page.evaluate(() => (window as any).__prompts);
    expect(seen.some((p) => /请插卡或挥卡|请输入密码/.test(p))).toBe(true);
    await page.locator('[data-testid=payment-status][data-status="approved"]').waitFor();
    const orderId = await page.getByTestId('sale-complete').getAttribute('data-order-id');
    expect((await office('GET', `/v1/orders/${orderId}`)).body.status).toBe('paid');
    await shot(page, 'lane-card-approved');
    await page.close();
  });

  it('card declined: says so and offers another try or another tender; the goods stay reserved meanwhile', async () => {
    const a = await sku(5100);
    const page = await openLane();
    await scan(page, a);
    await page.keyboard.press('F3');
    await page.locator('[data-testid=payment-status][data-status="declined"]').waitFor();
    await page.getByTestId('card-retry').waitFor();
    expect(await page.getByTestId('sale-complete').count()).toBe(0);
    expect(await level(a)).toMatchObject({ reserved: 1 });
    await shot(page, 'lane-card-declined');
    // Backing out of a declined card with nothing paid cancels the order: the stock is free again.
    await page.keyboard.press('Escape');
    await page.getByTestId('scan').waitFor();
    await eventually(async () => (await level(a)).reserved, 0);
    await page.close();
  });

  it('card unknown: goods held, no sale-complete, survives a reload, only wait / cash with confirmation / supervisor', async () => {
    const a = await sku(4400);
    const page = await openLane();
    await scan(page, a);
    await page.getByTestId('pay-card').click();
    await page.locator('[data-testid=payment-status][data-status="unknown"]').waitFor({ timeout: 20_000 });
    await page.getByTestId('unknown-warning').waitFor();
    await page.getByTestId('accept-unknown-cash').waitFor();
    await page.getByTestId('call-supervisor').waitFor();
    expect(await page.getByTestId('sale-complete').count()).toBe(0);
    expect(await page.getByTestId('back').count()).toBe(0);
    // Esc does not leave an unknown card behind.
    await page.keyboard.press('Escape');
    await page.getByTestId('unknown-warning').waitFor();
    expect(await level(a)).toMatchObject({ onHand: 10, reserved: 1 });
    await shot(page, 'lane-card-unknown');
    // A reload does not lose the held sale: the screen comes back to the unknown card.
    await page.reload();
    await page.locator('[data-testid=payment-status][data-status="unknown"]').waitFor();
    await page.getByTestId('unknown-warning').waitFor();
    await page.locator(`[data-testid=basket-line][data-sku="${a}"]`).waitFor();

    // Cash over the unknown card, after the explicit confirmation.
    await page.getByTestId('accept-unknown-cash').click();
    await page.getByTestId('accept-unknown-confirm').click();
    await page.getByTestId('cash-tendered').fill('50');
    await page.getByTestId('cash-confirm').click();
    await page.getByTestId('sale-complete').waitFor();
    expect(await page.getByTestId('change-due').getAttribute('data-fen')).toBe('600');
    expect(await level(a)).toMatchObject({ onHand: 9, reserved: 0 });
    await shot(page, 'lane-cash-over-unknown');
    await page.close();
  });

  it('English switch, manual search and refusals: an unknown code says so, too little cash is refused with nothing taken', async () => {
    const a = await sku(990);
    const page = await openLane();
    await page.getByTestId('lang').click();
    await scan(page, 'NO-SUCH-CODE');
    await page.locator('[data-testid=lane-message]', { hasText: 'No such item' }).waitFor();
    // Manual search by name for goods whose barcode will not scan.
    await page.getByTestId('item-search').fill((await office('GET', `/v1/till/items/${a}`)).body.name);
    await page.getByTestId('item-search').press('Enter');
    await page.locator(`[data-testid=search-result][data-sku="${a}"]`).click();
    await page.locator(`[data-testid=basket-line][data-sku="${a}"][data-qty="1"]`).waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('scan');
    await page.locator(`[data-testid=basket-line][data-sku="${a}"]`).waitFor();
    await page.keyboard.press('F2');
    await page.getByTestId('cash-tendered').fill('5');
    await page.getByTestId('cash-confirm').click();
    await page.getByText('tendered_too_little').waitFor();
    expect(await page.getByTestId('sale-complete').count()).toBe(0);
    await shot(page, 'lane-english-refusal');
    await page.keyboard.press('Escape');
    await eventually(async () => (await level(a)).reserved, 0);
    await page.close();
  });

  it("barcode scan, coupon checked when entered, the order's own discount and total, the receipt and a reprint", async () => {
    const a = await sku(2000);
    expect(
      (await office('PUT', `/v1/skus/${a}`, { name: '矿泉水', priceFen: 2000, barcode: '6901234567892' })).status,
    ).toBe(200);
    expect((await office('PUT', '/v1/coupons/SAVE5', { kind: 'amount_off', amountFen: 500 })).status).toBe(200);
    const page = await openLane();
    await scan(page, '6901234567892'); // the pack's EAN-13
    await page.locator(`[data-testid=basket-line][data-sku="${a}"]`).waitFor();
    await page.keyboard.press('F4');
    await page.keyboard.type('SAVE5');
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=lane-message]', { hasText: 'SAVE5' }).waitFor();
    await page.keyboard.press('F2');
    await page.locator('[data-testid=total][data-fen="1500"]').waitFor();
    await page.locator('[data-testid=discount][data-fen="500"]').waitFor();
    await page.getByTestId('cash-tendered').fill('20');
    await page.getByTestId('cash-confirm').click();
    await page.getByTestId('sale-complete').waitFor();
    expect(await page.getByTestId('change-due').getAttribute('data-fen')).toBe('500');
    await page.getByTestId('receipt').waitFor();
    expect(await page.getByTestId('receipt').textContent()).toContain('矿泉水');
    await page.getByTestId('reprint').click();
    await page.getByText(/已发送重印|Reprint sent/).waitFor();
    await shot(page, 'lane-coupon-receipt');
    await page.close();
  });

  it("return from a scanned receipt: pick a line and units, the refund is the server's and the stock comes back", async () => {
    const a = await sku(1250);
    const b = await sku(800);
    const o = (
      await cashier('POST', '/v1/orders', {
        lane: 'lane-1',
        lines: [
          { sku: a, qty: 2 },
          { sku: b, qty: 1 },
        ],
      })
    ).body;
    expect((await cashier('POST', `/v1/till/orders/${o.id}/cash`, { lane: 'lane-1', tenderedFen: 5000 })).status).toBe(
      201,
    );
    const page = await openLane();
    await scan(page, orderCodeOf(o.id)); // the receipt's barcode, scanned into the ordinary scan field
    await page.getByTestId('returns-panel').waitFor();
    const line = page.locator(`[data-testid=return-line][data-sku="${a}"]`);
    await line.getByTestId('return-qty').fill('1');
    await line.getByTestId('return-qty').press('Tab');
    await page.getByTestId('return-submit').click();
    const done = page.getByTestId('return-done');
    await done.waitFor();
    expect(await done.getAttribute('data-refund-fen')).toBe('1250');
    await shot(page, 'lane-return');
    expect(await level(a)).toMatchObject({ onHand: 9, reserved: 0 });
    await page.keyboard.press('Escape');
    await page.getByTestId('scan').waitFor();
    await page.close();
  });

  it('shift: open with a float, sell, close with the counted cash; the Z report shows the over/short', async () => {
    const a = await sku(2800);
    const page = await openLane();
    await page.getByTestId('open-shift-panel').click();
    await page.locator('[data-testid=shift-state][data-open="no"]').waitFor();
    await page.getByTestId('shift-float').fill('100');
    await page.getByTestId('shift-open').click();
    await page.locator('[data-testid=shift-state][data-open="yes"]').waitFor();
    await page.keyboard.press('Escape');
    await scan(page, a);
    await page.keyboard.press('F2');
    await page.getByTestId('cash-tendered').fill('30');
    await page.getByTestId('cash-confirm').click();
    await page.getByTestId('sale-complete').waitFor();
    await page.keyboard.press('F8');
    await page.getByTestId('open-shift-panel').click();
    await page.getByTestId('shift-counted').fill('127');
    await page.getByTestId('shift-close').click();
    // Expected cash 100 + 28 = 128; counted 127: one yuan short.
    await page.locator('[data-testid=over-short][data-fen="-100"]').waitFor();
    await shot(page, 'lane-shift-close');
    await page.close();
  });
});

describe('lane with shifts required, in Chromium', () => {
  let t: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    await buildPages();
    t = await startTestApp('sqlite', { config: { cashLanes: ['lane-1'] }, deps: { lane: { shiftsRequired: true } } });
    browser = await launch();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  it('no shift open: going to payment says so and opens the shift screen; after opening, the sale goes through', async () => {
    const office = await t.as('backoffice');
    await office('PUT', '/v1/skus/SH-1', { name: '面包', priceFen: 650 });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku: 'SH-1', qty: 3 }] });
    const key = (await t.api('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' })).body.key;
    const page = await newPage(browser);
    await signIn(page, `${t.url}/lane?lane=lane-1`, key);
    await page.locator('[data-testid=shift-badge][data-open="no"]').waitFor();
    await page.keyboard.type('SH-1');
    await page.keyboard.press('Enter');
    await page.keyboard.press('F2');
    await page.getByTestId('shift-panel').waitFor();
    await page.locator('[data-testid=lane-message]').waitFor();
    expect((await office('GET', '/v1/stock/SH-1')).body.reserved).toBe(0);
    await shot(page, 'lane-no-shift');
    await page.getByTestId('shift-float').fill('200');
    await page.getByTestId('shift-open').click();
    await page.locator('[data-testid=shift-state][data-open="yes"]').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('[data-testid=shift-badge][data-open="yes"]').waitFor();
    await page.keyboard.press('F2');
    await page.getByTestId('cash-tendered').fill('10');
    await page.getByTestId('cash-confirm').click();
    await page.getByTestId('sale-complete').waitFor();
    expect(await page.getByTestId('change-due').getAttribute('data-fen')).toBe('350');
    await page.close();
  });
});
