/**
 * What a receipt says, from the ledger: the order's lines (with discounts when the order has them),
 * the tenders, and for a card what a UnionPay sales slip shows. Rendered on demand from committed
 * rows, so the paper, the API's text and a reprint all say the same thing.
 */
import { EntityManager } from 'typeorm';
import { Db, rows } from '../db/db';
import { chinaTimestamp } from '../shared/clock';
import { DomainError, conflict, notFound } from '../shared/errors';
import type { PrintQueue } from '../printer/print-queue';
import { maskPan } from '../shared/logger';
import { maskedCard } from '../terminal/serial-terminal';
import { spread } from '../printer/escpos';
import { orderCodeOf } from './order-code';
import { ReceiptDoc, ReceiptLine, WIDTH } from './receipt-doc';

export interface ReceiptOptions {
  merchantName: string;
}

const CARD_TYPES: Record<string, string> = { D: '借记卡', C: '贷记卡', S: '准贷记卡', P: '预付卡', U: '未知' };

export const yuan = (fen: number): string => {
  const sign = fen < 0 ? '-' : '';
  const a = Math.abs(fen);
  return `${sign}${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
};

/** `YYYYMMDDhhmmss` → `YYYY-MM-DD hh:mm:ss` */
const dateTime = (t: string | null): string =>
  t && /^\d{14}$/.test(t)
    ? `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}`
    : '';

/** Columns after total_fen come with the returns work (coupons, 抹零); older databases lack them. */
type OrderRow = Record<string, unknown> & {
  id: string;
  lane: string;
  status: string;
  total_fen: unknown;
  created_at: unknown;
  discount_fen?: unknown;
  rounding_fen?: unknown;
  coupon_code?: string | null;
  subtotal_fen?: unknown;
};
type LineRow = Record<string, unknown> & {
  line_no: unknown;
  sku: string;
  qty: unknown;
  unit_price_fen: unknown;
  name: string | null;
};
type PaymentRow = {
  id: string;
  method: string;
  amount_fen: unknown;
  status: string;
  card_masked: string | null;
  card_type: string | null;
  terminal_id: string | null;
  merchant_id: string | null;
  batch_no: string | null;
  trace_no: string | null;
  rrn: string | null;
  auth_code: string | null;
  terminal_time: string | null;
  finished_at: unknown;
  refund_state: string | null;
  refund_fen: unknown;
};

export class ReceiptsService {
  private queue: PrintQueue | null = null;

  constructor(
    private readonly db: Db,
    private readonly opts: ReceiptOptions,
  ) {}

  /** The queue prints what this service renders, so it comes in after both exist. */
  usePrintQueue(queue: PrintQueue): void {
    this.queue = queue;
  }

  /** Queues a reprint (marked 重印, no drawer) on the order's lane; 409 before anything is queued when the order is not paid. */
  async reprint(
    orderId: string,
    actor: string,
    boundLane: string | null,
  ): Promise<{ jobId: string; lane: string; status: 'queued' }> {
    const [order] = await this.db.read((m) =>
      rows<{ lane: string }>(m, 'SELECT lane FROM orders WHERE id = ?', [orderId]),
    );
    if (!order) throw notFound('order', orderId);
    if (boundLane && boundLane !== order.lane)
      throw new DomainError(403, 'wrong_lane', `this key is for lane ${boundLane}; the order is on lane ${order.lane}`);
    await this.forOrder(orderId, true);
    if (!this.queue) throw conflict('no_printer', 'no print queue is running');
    const jobId = await this.queue.enqueue({ lane: order.lane, kind: 'reprint', orderId, actor });
    return { jobId, lane: order.lane, status: 'queued' };
  }

  async forOrder(orderId: string, reprint = false): Promise<ReceiptDoc> {
    return this.db.read((m) => this.forOrderIn(m, orderId, reprint));
  }

  async forOrderIn(m: EntityManager, orderId: string, reprint: boolean): Promise<ReceiptDoc> {
    const [order] = await rows<OrderRow>(m, 'SELECT * FROM orders WHERE id = ?', [orderId]);
    if (!order) throw notFound('order', orderId);
    if (order.status !== 'paid')
      throw conflict('order_not_paid', `order ${orderId} is ${order.status}; a receipt is printed once it is paid`, {
        status: order.status,
      });
    // SELECT l.*: discount_fen / net_fen are read when the returns work has added them.
    const lines = await rows<LineRow>(
      m,
      'SELECT l.*, s.name AS name FROM order_line l LEFT JOIN sku s ON s.sku = l.sku WHERE l.order_id = ? ORDER BY l.line_no',
      [orderId],
    );
    const payments = await rows<PaymentRow>(
      m,
      `SELECT id, method, amount_fen, status, card_masked, card_type, terminal_id, merchant_id, batch_no, trace_no, rrn, auth_code, terminal_time, finished_at, refund_state, refund_fen
         FROM payment WHERE order_id = ? AND status = 'approved' ORDER BY created_at, id`,
      [orderId],
    );
    const paidAt = Math.max(Number(order.created_at), ...payments.map((p) => Number(p.finished_at ?? 0)));

    const out: ReceiptLine[] = [];
    const sep = { text: '-'.repeat(WIDTH) };
    out.push({ text: this.opts.merchantName, bold: true, double: true, align: 'center' });
    out.push({ text: reprint ? '销售小票（重印）' : '销售小票', align: 'center' });
    if (reprint) out.push({ text: '*** 重印 REPRINT ***', bold: true, align: 'center' });
    out.push({ text: `订单号 ${order.id}` });
    out.push({ text: spread(`收银台 ${order.lane}`, dateTime(chinaTimestamp(new Date(paidAt))), WIDTH) });
    out.push(sep);
    let discountTotal = 0;
    for (const l of lines) {
      const qty = Number(l.qty);
      const unit = Number(l.unit_price_fen);
      const gross = qty * unit;
      const discount = l.discount_fen != null ? Number(l.discount_fen) : 0;
      const net = l.net_fen != null ? Number(l.net_fen) : gross - discount;
      discountTotal += discount;
      out.push({ text: `${l.name ?? l.sku}` });
      out.push({ text: spread(`  ${l.sku}  ${qty} x ${yuan(unit)}`, yuan(gross), WIDTH) });
      if (discount) out.push({ text: spread('  优惠', yuan(-discount), WIDTH) });
      if (discount && net !== gross - discount) out.push({ text: spread('  实付', yuan(net), WIDTH) });
    }
    out.push(sep);
    const orderDiscount = order.discount_fen != null ? Number(order.discount_fen) : discountTotal;
    if (orderDiscount) {
      if (order.subtotal_fen != null) out.push({ text: spread('小计', yuan(Number(order.subtotal_fen)), WIDTH) });
      if (order.coupon_code) out.push({ text: spread('优惠券', String(order.coupon_code), WIDTH) });
      out.push({ text: spread('优惠合计', yuan(-orderDiscount), WIDTH) });
    }
    out.push({ text: spread('合计 TOTAL', yuan(Number(order.total_fen)), WIDTH), bold: true });
    const rounding = order.rounding_fen != null ? Number(order.rounding_fen) : 0;
    if (rounding)
      out.push(
        { text: spread('抹零', yuan(-rounding), WIDTH) },
        { text: spread('实收', yuan(Number(order.total_fen) - rounding), WIDTH) },
      );
    for (const p of payments) {
      out.push({ text: spread(p.method === 'cash' ? '现金 CASH' : '银行卡 CARD', yuan(Number(p.amount_fen)), WIDTH) });
      if (p.refund_state && Number(p.refund_fen ?? 0) > 0)
        out.push({ text: spread('  多付待退', yuan(Number(p.refund_fen)), WIDTH) });
    }
    for (const p of payments.filter((x) => x.method === 'card')) out.push(sep, ...this.cardSlip(p));
    out.push(sep);
    out.push({ barcode: orderCodeOf(order.id) });
    out.push({ text: '凭小票退换货  谢谢惠顾', align: 'center' });
    return { lines: out };
  }

  /** What a UnionPay sales slip (签购单) carries; the card number only ever masked. */
  private cardSlip(p: PaymentRow): ReceiptLine[] {
    const card = maskPan(maskedCard(p.card_masked ?? undefined) ?? '');
    const row = (k: string, v: string | null) => ({ text: spread(k, v ?? '', WIDTH) });
    return [
      { text: '银联签购单 UnionPay', bold: true, align: 'center' as const },
      row('商户名称', this.opts.merchantName),
      row('商户编号', p.merchant_id),
      row('终端编号', p.terminal_id),
      row('卡号', card),
      row('卡类型', p.card_type ? `${CARD_TYPES[p.card_type] ?? p.card_type}` : ''),
      row('交易类型', '消费 SALE'),
      row('批次号', p.batch_no),
      row('凭证号', p.trace_no),
      row('参考号', p.rrn),
      row('授权码', p.auth_code),
      row('日期时间', dateTime(p.terminal_time)),
      { text: spread('金额 AMOUNT', `RMB ${yuan(Number(p.amount_fen))}`, WIDTH), bold: true },
      { text: '持卡人签名 CARDHOLDER SIGNATURE' },
      { text: '' },
      { text: '本人确认以上交易，同意将其记入本卡账户' },
    ];
  }
}
