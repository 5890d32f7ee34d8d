/**
 * The back office in Chromium against the service with the in-process simulated terminal.
 * Each page is visited and photographed under test-results/.
 */
import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { createSimulatedTerminal, SimulatedTerminal } from '../../src/terminal/in-process';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { DEMO_SCRIPT } from '../../src/adapters';
import { embeddedAcquirer, EmbeddedAcquirer } from '../../src/acquirer/acquirer-env';
import { addDays, settleDayAt } from '../../src/reconciliation/settle-day';
import { chinaTimestamp } from '../../src/shared/clock';
import { Api, startTestApp, TestApp } from '../support/app';
import { buildPages, launch, newPage, shot, signIn } from '../support/browser';

/** Browser globals, used only inside page.evaluate callbacks (they run in Chromium, not in Node). */
declare const DataTransfer: any;

const T_RESP = 1200;

describe('back office in Chromium', () => {
  let t: TestApp;
  let sim: SimulatedTerminal;
  let acq: EmbeddedAcquirer;
  const bank = new MemorySimBank();
  let browser: Browser;
  let office: Api;
  let cashier: Api;
  let officeKey: string;
  let page: Page;
  let seq = 0;

  beforeAll(async () => {
    await buildPages();
    sim = await createSimulatedTerminal('lane-1', { bank, tRespMs: T_RESP, tAckMs: 150, script: DEMO_SCRIPT });
    // The acquirer simulator shares the terminal's bank, so its settlement files list what the terminal did.
    acq = await embeddedAcquirer(bank);
    t = await startTestApp('sqlite', {
      acquirer: acq.acquirer,
      terminals: new Map([['lane-1', sim.terminal]]),
      config: { terminalTRespMs: T_RESP, reversalGraceSeconds: 3600, orderHoldSeconds: 3 },
    });
    officeKey = (await t.api('POST', '/v1/api-keys', { role: 'backoffice' })).body.key;
    office = await t.as('backoffice');
    cashier = await t.as('cashier', 'lane-1');
    browser = await launch();
    page = await newPage(browser, { width: 1280, height: 900 });
    await signIn(page, `${t.url}/backoffice`, officeKey);
    await page.getByTestId('nav-held').waitFor();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    await sim?.close();
    await acq?.close();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  async function sku(priceFen: number, qty = 10): Promise<string> {
    const code = `BO-${++seq}`;
    await office('PUT', `/v1/skus/${code}`, { name: `货品${seq}`, priceFen });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku: code, qty }] });
    return code;
  }
  const level = async (code: string) => (await office('GET', `/v1/stock/${code}`)).body;

  /** A card attempt whose outcome the terminal never gave (¥44.00 in the demo script): held money. */
  async function unknownPayment(code: string): Promise<{ orderId: string; paymentId: string }> {
    const o = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: code, qty: 1 }] });
    const p = await cashier('POST', `/v1/orders/${o.body.id}/payments`, {
      method: 'card',
      amountFen: o.body.totalFen,
      lane: 'lane-1',
    });
    const after = (await cashier('GET', `/v1/payments/${p.body.id}?wait=10`)).body;
    expect(after.status).toBe('unknown');
    return { orderId: o.body.id, paymentId: p.body.id };
  }

  it('held money: resolve an unknown card as declined with a note; the hold then ends and the stock is released; audited', async () => {
    const code = await sku(4400);
    const { paymentId } = await unknownPayment(code);
    await page.getByTestId('nav-stock').click();
    await page.getByTestId('nav-held').click();
    const row = page.locator(`[data-testid=held-payment][data-payment-id="${paymentId}"][data-status="unknown"]`);
    await row.waitFor();
    await row.getByTestId('resolve-open').click();
    // The note is required: without it the button stays disabled and nothing is sent.
    expect(await page.getByTestId('resolve-submit').isDisabled()).toBe(true);
    await page.getByTestId('resolve-outcome').selectOption('declined');
    await page.getByTestId('resolve-note').fill('终端无回应，银行确认未扣款');
    await shot(page, 'backoffice-held');
    await page.getByTestId('resolve-submit').click();
    await page.getByTestId('resolve-done').waitFor();
    await row.waitFor({ state: 'detached' });

    // A declined card leaves the order open for another tender: the Stock page shows who holds the unit and why.
    await page.getByTestId('nav-stock').click();
    await page.getByTestId('stock-search').fill(code);
    await page.getByTestId('stock-search').press('Enter');
    await page.locator(`[data-testid=stock-level][data-sku="${code}"][data-reserved="1"]`).waitFor();
    await page.locator('[data-testid=stock-holder]', { hasText: 'declined' }).waitFor();
    // With no live payment left, the order's hold ends at its expiry and the sweep releases the stock.
    await new Promise((r) => setTimeout(r, 3100));
    expect((await t.api('POST', '/v1/sweeps')).body.expired).toBeGreaterThanOrEqual(1);
    expect(await level(code)).toMatchObject({ onHand: 10, reserved: 0 });
    await page.getByTestId('stock-search-submit').click();
    await page.locator(`[data-testid=stock-level][data-sku="${code}"][data-on-hand="10"][data-reserved="0"]`).waitFor();
    await page.locator('[data-testid=movement]').first().waitFor();
    await shot(page, 'backoffice-stock');
    await page.getByTestId('nav-audit').click();
    await page.getByTestId('audit-entity').fill(paymentId);
    await page.getByTestId('audit-search').click();
    await page.locator(`[data-testid=audit-row][data-entity-id="${paymentId}"][data-action="resolve"]`).waitFor();
    await shot(page, 'backoffice-audit');
  });

  it('held money: resolved as approved, the order is paid and the stock sold', async () => {
    const code = await sku(4400);
    const { orderId, paymentId } = await unknownPayment(code);
    await page.getByTestId('nav-audit').click();
    await page.getByTestId('nav-held').click();
    const row = page.locator(`[data-testid=held-payment][data-payment-id="${paymentId}"]`);
    await row.getByTestId('resolve-open').click();
    await page.getByTestId('resolve-outcome').selectOption('approved');
    await page.getByTestId('resolve-note').fill('bank statement shows the charge, RRN checked');
    await page.getByTestId('resolve-submit').click();
    await row.waitFor({ state: 'detached' });
    expect(await level(code)).toMatchObject({ onHand: 9, reserved: 0 });
    expect((await office('GET', `/v1/orders/${orderId}`)).body.status).toBe('paid');
  });

  it('stock count: open, drop a CSV, see the variance, approve, export; on hand follows the count', async () => {
    const a = await sku(500, 20);
    const b = await sku(800, 5);
    await page.getByTestId('nav-counts').click();
    await page.getByTestId('count-open').click();
    await page.locator('[data-testid=count-view][data-status="open"]').waitFor();
    const csv = `sku,counted\n${a},17\n${b},5\n`;
    const dt = await page.evaluateHandle((text) => {
      const d = new DataTransfer();
      d.items.add(new File([text], 'count.csv', { type: 'text/csv' }));
      return d;
    }, csv);
    await page.dispatchEvent('[data-testid=count-drop]', 'drop', { dataTransfer: dt });
    await page.locator(`[data-testid=count-line][data-sku="${a}"][data-variance="-3"]`).waitFor();
    await page.locator(`[data-testid=count-line][data-sku="${b}"][data-variance="0"]`).waitFor();
    // Recount one SKU from its row: the new figure replaces the earlier one and only that row changes.
    const rowA = page.locator(`[data-testid=count-line][data-sku="${a}"]`);
    await rowA.getByTestId('recount-open').click();
    await rowA.getByTestId('recount-qty').fill('19');
    await rowA.getByTestId('recount-qty').press('Enter');
    await page.locator(`[data-testid=count-line][data-sku="${a}"][data-variance="-1"]`).waitFor();
    await page.locator(`[data-testid=count-line][data-sku="${b}"][data-variance="0"]`).waitFor();
    await page.getByTestId('count-ok').waitFor();
    await shot(page, 'backoffice-count');
    await page.getByTestId('count-approve').click();
    await page.locator('[data-testid=count-view][data-status="approved"]').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('count-export').click()]);
    const csvOut = await readFile((await download.path())!, 'utf8');
    expect(csvOut.split('\n')[0]).toMatch(/^sku,/);
    expect(csvOut).toContain(`${a},`);
    expect(await level(a)).toMatchObject({ onHand: 19, reserved: 0 });
    expect(await level(b)).toMatchObject({ onHand: 5 });
  });

  it('coupons: create one through the form in yuan, see it listed with remaining = maxUses, edit its uses', async () => {
    const a = await sku(6000);
    await page.getByTestId('nav-coupons').click();
    await page.getByTestId('coupon-new').click();
    await page.getByTestId('coupon-code').fill('WEB-SAVE8');
    await page.getByTestId('coupon-kind').selectOption('amount_off');
    await page.getByTestId('coupon-amount').fill('8.50');
    await page.getByTestId('coupon-min').fill('50');
    await page.getByTestId('coupon-skus').fill(a);
    await page.getByTestId('coupon-max-uses').fill('3');
    await shot(page, 'backoffice-coupon-form');
    // The server decides: a percent over 100 comes back as its 400, shown, and nothing is stored.
    await page.getByTestId('coupon-kind').selectOption('percent_off');
    await page.getByTestId('coupon-percent').fill('150');
    await page.getByTestId('coupon-save').click();
    await page.getByTestId('coupon-error').getByText('invalid_request').waitFor();
    expect((await office('GET', '/v1/coupons/WEB-SAVE8')).status).toBe(404);
    await page.getByTestId('coupon-kind').selectOption('amount_off');
    await page.getByTestId('coupon-amount').fill('8.50');
    await page.getByTestId('coupon-save').click();
    await page.locator('[data-testid=coupon-row][data-code="WEB-SAVE8"][data-used="0"][data-remaining="3"]').waitFor();
    expect((await office('GET', '/v1/coupons/WEB-SAVE8')).body).toMatchObject({
      kind: 'amount_off',
      amountFen: 850,
      minSubtotalFen: 5000,
      skus: [a],
      maxUses: 3,
      remaining: 3,
    });

    // A use reserved by an order shows as one fewer remaining once the list is read again.
    const o = await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: a, qty: 1 }], coupon: 'WEB-SAVE8' });
    expect(o.status).toBe(201);
    const row = page.locator('[data-testid=coupon-row][data-code="WEB-SAVE8"]');
    await row.getByTestId('coupon-edit').click();
    expect(await page.getByTestId('coupon-amount').inputValue()).toBe('8.50');
    expect(await page.getByTestId('coupon-code').getAttribute('readonly')).not.toBeNull();
    await page.getByTestId('coupon-max-uses').fill('5');
    await page.getByTestId('coupon-save').click();
    await page.locator('[data-testid=coupon-row][data-code="WEB-SAVE8"][data-remaining="4"]').waitFor();
    await shot(page, 'backoffice-coupons');
    // Cancelled before payment, the order gives its use back.
    expect((await cashier('POST', `/v1/orders/${o.body.id}/cancel`, {})).status).toBe(200);
    await page.getByTestId('nav-held').click();
    await page.getByTestId('nav-coupons').click();
    await page.locator('[data-testid=coupon-row][data-code="WEB-SAVE8"][data-remaining="5"]').waitFor();
  });

  it('seat map: a seat held through the API turns to held within 2 s', async () => {
    const seats = ['A', 'B'].flatMap((row) =>
      [1, 2, 3, 4, 5, 6].map((n) => ({ id: `${row}${n}`, section: '池座', row, number: n, priceFen: 18000 })),
    );
    expect((await office('POST', '/v1/events', { id: 'gala', name: '新年音乐会', seats })).status).toBe(201);
    await page.getByTestId('nav-seats').click();
    await page.locator('[data-testid=seat][data-seat-id="A3"][data-status="free"]').waitFor();
    const hold = await cashier('POST', '/v1/events/gala/holds', { seats: ['A3', 'A4'], ttlSeconds: 600 });
    expect(hold.status).toBe(201);
    const started = Date.now();
    await page.locator('[data-testid=seat][data-seat-id="A3"][data-status="held"]').waitFor({ timeout: 2000 });
    expect(Date.now() - started).toBeLessThanOrEqual(2000);
    await page.locator('[data-testid=seat-hold][data-seat-id="A4"]').waitFor();
    await shot(page, 'backoffice-seats');
  });

  it('reconciliation: run a settle day against the acquirer simulator, see a difference, resolve it with a note', async () => {
    const day = addDays(settleDayAt(new Date()), -2);
    // A charge the acquirer settled that this store never recorded: an acquirer-only difference for a person.
    await bank.record({
      orderId: 'FOREIGN-WEB-1',
      amountFen: 1234,
      status: 'approved',
      txnTime: chinaTimestamp(new Date(`${day}T10:00:00+08:00`)),
      respCode: '00',
    });
    await page.getByTestId('nav-recon').click();
    await page.getByTestId('recon-date').fill(day);
    await page.getByTestId('recon-start').click();
    await page.locator('[data-testid=recon-run][data-status="done"]').waitFor();
    const item = page.locator('[data-testid=recon-item][data-class="acquirer_only"]');
    await item.waitFor();
    await item.getByTestId('recon-item-resolve').click();
    await page.getByTestId('recon-resolve-action').selectOption('chase');
    await page.getByTestId('recon-resolve-note').fill('not our sale; asked the acquirer, ticket 7');
    await shot(page, 'backoffice-recon');
    await page.getByTestId('recon-resolve-submit').click();
    await page.locator('[data-testid=recon-item][data-class="acquirer_only"][data-resolved="chase"]').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('recon-export').click()]);
    expect(await readFile((await download.path())!, 'utf8')).toContain('FOREIGN-WEB-1');
    const runs = (await office('GET', `/v1/reconciliations?settleDate=${day}`)).body.runs;
    expect(runs[0].counts.acquirerOnly).toBe(1);
  });

  it("shifts: a closed shift's Z report with its over/short", async () => {
    const a = await sku(1000);
    const shift = (await cashier('POST', '/v1/shifts', { lane: 'lane-1', floatFen: 5000 })).body;
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: a, qty: 1 }] })).body;
    expect(
      (await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: 1000, lane: 'lane-1' }))
        .status,
    ).toBe(201);
    expect((await cashier('POST', `/v1/shifts/${shift.id}/close`, { countedCashFen: 6050 })).status).toBe(200);
    await page.getByTestId('nav-shifts').click();
    await page.locator(`[data-testid=z-report][data-shift-id="${shift.id}"][data-over-short-fen="50"]`).waitFor();
    await shot(page, 'backoffice-shifts');
  });

  it('every page opens (shifts with sales by tender, reconciliation) and the English switch works', async () => {
    for (const p of ['held', 'stock', 'counts', 'recon', 'shifts', 'seats', 'coupons', 'audit']) {
      await page.getByTestId(`nav-${p}`).click();
      await page.locator('main h2').first().waitFor();
      await shot(page, `backoffice-page-${p}`);
    }
    await page.getByTestId('lang').click();
    await page.getByTestId('nav-held').click();
    await page.getByText('Card payments not confirmed').waitFor();
    await page.getByTestId('lang').click();
  });
});
