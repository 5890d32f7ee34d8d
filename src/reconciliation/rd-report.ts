/**
 * The RD summary report in the ZIP (GBK text): its first 总计 (total) row holds the control totals
 * the detail lines must add up to — count, amount debit/credit, fee debit/credit, net debit/credit,
 * in yuan with two decimals.
 */
import iconv from 'iconv-lite';

export interface Totals {
  count: number;
  amountFen: number;
  feeFen: number;
  netFen: number;
}

const TOTAL = '总计';

function yuanToFen(s: string): number {
  const m = /^(-?)(\d+)\.(\d{2})$/.exec(s);
  if (!m) throw new Error(`not an amount in yuan: "${s}"`);
  const v = Number(m[2]) * 100 + Number(m[3]);
  return m[1] ? -v : v;
}

/** The control totals, or why they cannot be read. Amount and net count credits up, the fee debits up. */
export function parseRdTotals(buf: Buffer): Totals {
  const text = iconv.decode(buf, 'gbk');
  const row = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.startsWith(TOTAL));
  if (!row) throw new Error('the RD report has no 总计 row');
  const t = row.slice(TOTAL.length).trim().split(/\s+/);
  if (t.length < 7 || !/^\d+$/.test(t[0]))
    throw new Error(`the RD report's 总计 row does not have a count and six amounts: "${row}"`);
  const [count, amtD, amtC, feeD, feeC, netD, netC] = [Number(t[0]), ...t.slice(1, 7).map(yuanToFen)];
  return { count, amountFen: amtC - amtD, feeFen: feeD - feeC, netFen: netC - netD };
}

const yuan = (fen: number) => `${Math.trunc(Math.abs(fen) / 100)}.${String(Math.abs(fen) % 100).padStart(2, '0')}`;
const col = (s: string, w: number) => s.padStart(w);

/** An RD report with the given totals, laid out like UnionPay's (for the simulator and the benchmark). */
export function formatRd(t: Totals, merId: string, settleDay: string): Buffer {
  const pair = (v: number, creditUp: boolean) => (v >= 0 === creditUp ? [yuan(0), yuan(v)] : [yuan(v), yuan(0)]);
  const [aD, aC] = pair(t.amountFen, true);
  const [fC, fD] = pair(t.feeFen, true); // a positive fee is a debit
  const [nD, nC] = pair(t.netFen, true);
  const row = (label: string) =>
    `${label}${col(String(t.count), 20)}${col(aD, 16)}${col(aC, 16)}${col(fD, 16)}${col(fC, 16)}${col(nD, 16)}${col(nC, 20)}`;
  const lines = [
    `${' '.repeat(40)}中国银联全渠道商户交易汇总表`,
    '',
    `商户代码:${merId}${' '.repeat(20)}清算币种:人民币`,
    `清算日期:${settleDay.replace(/-/g, '')}`,
    '',
    '交易类型            交易笔数               交易金额                         费用                              资金清算差额',
    '_'.repeat(136),
    row('自助消费'),
    '_'.repeat(136),
    row('总计'),
    '',
  ];
  return iconv.encode(lines.join('\r\n'), 'gbk');
}
