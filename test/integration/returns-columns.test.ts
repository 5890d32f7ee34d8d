/**
 * The receipt reads the discount columns the returns work adds (order_line.discount_fen,
 * orders.subtotal_fen / discount_fen / rounding_fen / coupon_code) and the shift report its refund
 * legs (refund_leg). The returns migration (1764000000600) now creates them; rows are written by hand
 * so the receipt and the report are tested on their own.
 */
import { freshDb, FreshDb, testDbKinds } from '../support/dbs';
import { ReceiptsService } from '../../src/receipts/receipts.service';
import { docToText } from '../../src/receipts/receipt-doc';
import { ShiftsService } from '../../src/shifts/shifts.service';
import { PrintQueue } from '../../src/printer/print-queue';
import { ManualClock } from '../../src/shared/clock';
import { silentLogger } from '../../src/shared/logger';

describe.each(testDbKinds())('receipt with discounts on $name', ({ name }) => {
  let fdb: FreshDb;
  beforeAll(async () => {
    fdb = await freshDb(name);
  });
  afterAll(async () => {
    await fdb?.drop();
  });

  it('shows each line discount, the coupon, the subtotal, the total and 抹零', async () => {
    const id = '11111111-2222-4333-8444-555555555555';
    const now = Date.UTC(2026, 10, 25, 4, 0, 0);
    await fdb.db.ds.query(
      `INSERT INTO sku (sku, name, price_fen, kind, on_hand, reserved, created_at, updated_at) VALUES ('D-1', '饼干', 1000, 'goods', 5, 0, ${now}, ${now})`,
    );
    await fdb.db.ds
      .query(`INSERT INTO orders (id, lane, kind, status, total_fen, paid_fen, overpaid_fen, expires_at, created_by, created_at, updated_at, version, subtotal_fen, discount_fen, rounding_fen, coupon_code)
      VALUES ('${id}', 'lane-1', 'goods', 'paid', 1805, 1800, 0, ${now}, 't', ${now}, ${now}, 0, 2000, 195, 5, 'SAVE10')`);
    await fdb.db.ds
      .query(`INSERT INTO order_line (id, order_id, line_no, sku, qty, unit_price_fen, reservation, ended_at, discount_fen)
      VALUES ('aaaaaaaa-2222-4333-8444-555555555555', '${id}', 1, 'D-1', 2, 1000, 'sold', ${now}, 195)`);
    await fdb.db.ds
      .query(`INSERT INTO payment (id, order_id, method, amount_fen, status, lane, acked, checks, created_by, created_at, updated_at, finished_at)
      VALUES ('bbbbbbbb-2222-4333-8444-555555555555', '${id}', 'cash', 1800, 'approved', 'lane-1', 0, 0, 't', ${now}, ${now}, ${now})`);
    const text = docToText(await new ReceiptsService(fdb.db, { merchantName: '店' }).forOrder(id));
    expect(text).toMatch(/D-1 {2}2 x 10\.00 +20\.00\n {2}优惠 +-1\.95\n/);
    expect(text).toMatch(
      /小计 +20\.00\n优惠券 +SAVE10\n优惠合计 +-1\.95\n合计 TOTAL +18\.05\n抹零 +-0\.05\n实收 +18\.00\n现金 CASH +18\.00\n/,
    );
    expect(text).toContain('收银台 lane-1                2026-11-25 12:00:00');
  });

  it('the shift report counts refund legs by how the money went back, and takes cash refunds off the expected cash', async () => {
    const clock = new ManualClock(new Date(Date.UTC(2026, 10, 25, 1, 0, 0)));
    const queue = new PrintQueue(fdb.db, new Map(), async () => ({ lines: [] }), clock, silentLogger, {
      instanceId: 't',
      pollMs: 1000,
      retryMs: 1000,
      claimMs: 1000,
    });
    const shifts = new ShiftsService(fdb.db, clock, queue);
    const s = await shifts.open({ lane: 'lane-7', floatFen: 10000 }, 'key:t');
    const at = clock.now().getTime() + 1000;
    const leg = (id: string, method: string, amount: number, status: string, lane: string) =>
      fdb.db.ds
        .query(`INSERT INTO refund_leg (id, return_id, order_id, payment_id, seq, method, amount_fen, status, lane, created_at, updated_at, finished_at)
        VALUES ('${id}', 'r', 'o', 'p-${id}', 1, '${method}', ${amount}, '${status}', '${lane}', ${at}, ${at}, ${at})`);
    await leg('l1', 'cash', 300, 'approved', 'lane-7');
    await leg('l2', 'card', 500, 'approved', 'lane-7');
    await leg('l3', 'card', 200, 'paid_in_cash', 'lane-7');
    await leg('l4', 'card', 999, 'failed', 'lane-7');
    await leg('l5', 'cash', 999, 'approved', 'lane-8');
    clock.advance(60_000);
    const z = await shifts.close(s.id, 9400, 'key:t', null);
    expect(z.refunds).toEqual({
      cash: { count: 2, fen: 500 },
      card: { count: 1, fen: 500 },
      totalFen: 1000,
      includesReturns: true,
    });
    expect(z).toMatchObject({ expectedCashFen: 9500, countedCashFen: 9400, overShortFen: -100 });
  });
});
