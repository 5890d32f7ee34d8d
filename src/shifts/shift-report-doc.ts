import { spread } from '../printer/escpos';
import { ReceiptDoc, ReceiptLine, WIDTH } from '../receipts/receipt-doc';
import { yuan } from '../receipts/receipts.service';
import { chinaTimestamp } from '../shared/clock';
import { ShiftReport } from './shifts.service';

const when = (isoTime: string | null) => {
  if (!isoTime) return '';
  const t = chinaTimestamp(new Date(isoTime));
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}`;
};

/** The X/Z report on paper: the same figures as GET /v1/shifts/:id/report. */
export function shiftReportDoc(r: ShiftReport, merchantName: string): ReceiptDoc {
  const row = (k: string, v: string): ReceiptLine => ({ text: spread(k, v, WIDTH) });
  const sep = { text: '-'.repeat(WIDTH) };
  return {
    lines: [
      { text: merchantName, bold: true, align: 'center' },
      { text: r.kind === 'Z' ? '交班报表 Z REPORT' : '当班报表 X REPORT', bold: true, double: true, align: 'center' },
      { text: `班次 ${r.shiftId}` },
      { text: `收银台 ${r.lane}` },
      row('开班', when(r.openedAt)),
      // Money confirmed on the lane after the previous close and before this open counts in this shift.
      ...(r.countsFrom && r.countsFrom !== r.openedAt ? [row('计入自 (上次交班后)', when(r.countsFrom))] : []),
      row('交班', when(r.closedAt)),
      sep,
      row(`现金销售 ${r.sales.cash.count} 笔`, yuan(r.sales.cash.fen)),
      row(`银行卡销售 ${r.sales.card.count} 笔`, yuan(r.sales.card.fen)),
      row('销售合计', yuan(r.sales.totalFen)),
      row(`现金退款 ${r.refunds.cash.count} 笔`, yuan(-r.refunds.cash.fen)),
      row(`银行卡退款 ${r.refunds.card.count} 笔`, yuan(-r.refunds.card.fen)),
      ...(r.heldCardPayments ? [row('待确认银行卡交易', `${r.heldCardPayments} 笔`)] : []),
      sep,
      row('备用金', yuan(r.floatFen)),
      row('应有现金', yuan(r.expectedCashFen)),
      row('实点现金', r.countedCashFen == null ? '' : yuan(r.countedCashFen)),
      { text: spread('长短款', r.overShortFen == null ? '' : yuan(r.overShortFen), WIDTH), bold: true },
    ],
  };
}
