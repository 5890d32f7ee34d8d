import { Db, placeholders, rows } from '../db/db';
import { DomainError, notFound, unprocessable } from '../shared/errors';
import { PaymentsService, PaymentView } from '../payments/payments.service';
import { OrdersService, OrderView, cashRoundedDue } from '../orders/orders.service';

export interface TillItem {
  sku: string;
  name: string;
  priceFen: number;
  available: number;
}
export interface QuoteLine {
  sku: string;
  name: string;
  qty: number;
  unitPriceFen: number;
  amountFen: number;
}
export interface Quote {
  lines: QuoteLine[];
  totalFen: number;
}
export interface CashTender {
  payment: PaymentView;
  order: OrderView;
  tenderedFen: number;
  changeFen: number;
}

interface SkuRow {
  sku: string;
  name: string;
  price_fen: unknown;
  on_hand: unknown;
  reserved: unknown;
}
const item = (r: SkuRow): TillItem => ({
  sku: r.sku,
  name: r.name,
  priceFen: Number(r.price_fen),
  available: Number(r.on_hand) - Number(r.reserved),
});

/**
 * What the cashier screen asks before an order exists (look up a scanned code, price a basket) and
 * the cash tender with change: the page shows these numbers and never works them out itself, so the
 * screen, the order and the receipt cannot disagree.
 */
export class TillService {
  constructor(
    private readonly db: Db,
    private readonly orders: OrdersService,
    private readonly payments: PaymentsService,
  ) {}

  async item(code: string): Promise<TillItem> {
    const found = await this.db.read((m) =>
      rows<SkuRow>(m, "SELECT sku, name, price_fen, on_hand, reserved FROM sku WHERE sku = ? AND kind = 'goods'", [
        code,
      ]),
    );
    if (!found.length) throw notFound('sku', code);
    return item(found[0]);
  }

  /** Manual search by name or code, for goods without a readable barcode. '!' escapes LIKE wildcards: a backslash means different things to MySQL and SQLite. */
  async search(q: string, limit: number): Promise<TillItem[]> {
    const like = `%${q.replace(/[!%_]/g, (c) => `!${c}`)}%`;
    const found = await this.db.read((m) =>
      rows<SkuRow>(
        m,
        "SELECT sku, name, price_fen, on_hand, reserved FROM sku WHERE kind = 'goods' AND (sku LIKE ? ESCAPE '!' OR name LIKE ? ESCAPE '!') ORDER BY sku LIMIT ?",
        [like, like, limit],
      ),
    );
    return found.map(item);
  }

  /** Prices a basket at today's prices; the order made at payment is priced the same way and is what counts. */
  async quote(lines: { sku: string; qty: number }[]): Promise<Quote> {
    const skus = [...new Set(lines.map((l) => l.sku))];
    const found = await this.db.read((m) =>
      rows<SkuRow>(
        m,
        `SELECT sku, name, price_fen, on_hand, reserved FROM sku WHERE sku IN (${placeholders(skus.length)})`,
        skus,
      ),
    );
    const bySku = new Map(found.map((r) => [r.sku, item(r)]));
    const missing = skus.filter((s) => !bySku.has(s));
    if (missing.length) throw unprocessable('unknown_sku', `no such SKU: ${missing.join(', ')}`, { skus: missing });
    const out = lines.map((l) => {
      const it = bySku.get(l.sku)!;
      return { sku: l.sku, name: it.name, qty: l.qty, unitPriceFen: it.priceFen, amountFen: it.priceFen * l.qty };
    });
    return { lines: out, totalFen: out.reduce((s, l) => s + l.amountFen, 0) };
  }

  /**
   * Takes cash for what is still owed and says how much to give back. The payment is for the
   * balance (never more than the order owes; rounded down to the jiao when the store rounds cash,
   * which the tender records on the order); the change is the rest of what was handed over.
   */
  async cash(
    orderId: string,
    input: { lane: string; tenderedFen: number; acceptUnknownCard?: boolean; keyLane?: string | null },
    actor: string,
  ): Promise<CashTender> {
    const before = await this.orders.get(orderId);
    // As for every POST under /orders/:id: a lane-bound key takes money only for its own lane's orders.
    if (input.keyLane && before.lane !== input.keyLane) {
      throw new DomainError(
        403,
        'wrong_lane',
        `this key is for lane ${input.keyLane}; the order is on lane ${before.lane}`,
      );
    }
    const rounded = input.acceptUnknownCard ? null : cashRoundedDue(this.orders.cashRounding, before);
    const outstanding = rounded ?? before.totalFen - before.roundingFen - before.paidFen;
    if (outstanding <= 0)
      throw unprocessable('nothing_to_pay', `order ${orderId} has nothing left to pay`, {
        outstandingFen: outstanding,
      });
    if (input.tenderedFen < outstanding) {
      throw unprocessable(
        'tendered_too_little',
        `the order needs ${outstanding} fen; ${input.tenderedFen} fen is not enough`,
        { outstandingFen: outstanding, tenderedFen: input.tenderedFen },
      );
    }
    const payment = await this.payments.tender(
      orderId,
      { method: 'cash', amountFen: outstanding, lane: input.lane, acceptUnknownCard: input.acceptUnknownCard },
      actor,
    );
    const order = await this.orders.get(orderId);
    return { payment, order, tenderedFen: input.tenderedFen, changeFen: input.tenderedFen - payment.amountFen };
  }
}
