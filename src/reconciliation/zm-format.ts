/**
 * The ZM detail line (../shared/spec/reconciliation-file.md): 42 fixed-width fields in bytes, one
 * space apart. Fields are sliced as bytes and each slice decoded as GBK on its own, because a
 * Chinese character is two bytes and the widths count bytes. Only fields 1–40 are read by offset;
 * a longer line from a later file version is fine.
 */
import iconv from 'iconv-lite';

export const ZM_WIDTHS = [
  3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15, 32, 13, 13,
  8, 32, 13, 13, 12, 2, 1, 32, 98,
];
export const ZM_LINE_BYTES = ZM_WIDTHS.reduce((a, b) => a + b, 0) + ZM_WIDTHS.length - 1; // 607
/** Byte offset of field n (1-based). */
const OFFSETS = ZM_WIDTHS.map((_, i) => ZM_WIDTHS.slice(0, i).reduce((a, b) => a + b, 0) + i);
/** A line must reach the end of field 40. */
export const ZM_MIN_BYTES = OFFSETS[39] + ZM_WIDTHS[39];

export interface ZmLine {
  txnCode: string; // 1
  traceNo: string; // 4
  txnTime: string; // 5: MMDDhhmmss
  cardMasked: string; // 6
  amountFen: number; // 7
  queryId: string; // 10
  rf: string; // 12: merchant order id
  feeFen: number; // 16, signed: D (merchant pays) positive
  settleFen: number; // 17, signed: C (credited to the merchant) positive
  txnType: string; // 20: 01 sale, 31 void, 04 refund
  txnSubType: string; // 21
  origQueryId: string; // 27
  merId: string; // 28
  netFen: number; // 33, signed: C positive
  terminalId: string; // 34
}

export class ZmLineError extends Error {}

function field(buf: Buffer, n: number): string {
  const start = OFFSETS[n - 1];
  const end = start + ZM_WIDTHS[n - 1];
  // Most fields are ASCII: decoding those as latin1 is the same and much cheaper than GBK.
  for (let i = start; i < end; i++) if (buf[i] >= 0x80) return iconv.decode(buf.subarray(start, end), 'gbk').trim();
  return buf.toString('latin1', start, end).trim();
}

function digits(s: string, n: number, what: string): number {
  if (!/^\d+$/.test(s)) throw new ZmLineError(`field ${n} (${what}) is not a number: "${s}"`);
  return Number(s);
}

/** `D000000002861` → 2861, `C…` → negative; an empty field is 0. `positive` says which sign counts up. */
function signed(s: string, n: number, what: string, positive: 'C' | 'D'): number {
  if (s === '') return 0;
  const m = /^([CD])(\d{1,12})$/.exec(s);
  if (!m) throw new ZmLineError(`field ${n} (${what}) is not a signed amount: "${s}"`);
  const v = Number(m[2]);
  return m[1] === positive ? v : -v;
}

export function parseZmLine(buf: Buffer): ZmLine {
  if (buf.length < ZM_MIN_BYTES)
    throw new ZmLineError(`a line of ${buf.length} bytes is shorter than fields 1–40 (${ZM_MIN_BYTES})`);
  return {
    txnCode: field(buf, 1),
    traceNo: field(buf, 4),
    txnTime: field(buf, 5),
    cardMasked: field(buf, 6),
    amountFen: digits(field(buf, 7), 7, 'amount'),
    queryId: field(buf, 10),
    rf: field(buf, 12),
    feeFen: signed(field(buf, 16), 16, 'merchant fee', 'D'),
    settleFen: signed(field(buf, 17), 17, 'settlement amount', 'C'),
    txnType: field(buf, 20),
    txnSubType: field(buf, 21),
    origQueryId: field(buf, 27),
    merId: field(buf, 28),
    netFen: signed(field(buf, 33), 33, 'net settlement', 'C'),
    terminalId: field(buf, 34),
  };
}

/** Refunds and voids take money back from the merchant. */
export const isReversingType = (txnType: string): boolean => txnType === '04' || txnType === '31';

/** A ZM line for the simulator and the benchmark: the fields we know, the rest blank, 607 bytes. */
export function formatZmLine(l: Partial<ZmLine> & { amountFen: number }): Buffer {
  const values: Record<number, string> = {
    1: l.txnCode ?? (l.txnType && isReversingType(l.txnType) ? 'S31' : 'S56'),
    2: '88022900',
    3: '00049993',
    4: l.traceNo ?? '',
    5: l.txnTime ?? '',
    6: l.cardMasked ?? '622609******0048',
    7: String(l.amountFen).padStart(12, '0'),
    8: '4899',
    9: '07',
    10: l.queryId ?? '',
    11: '01',
    12: l.rf ?? '',
    13: '01',
    16: sign(l.feeFen ?? 0, 'D'),
    17: sign(l.settleFen ?? l.amountFen - (l.feeFen ?? 0), 'C'),
    18: '0001',
    20: l.txnType ?? '01',
    21: l.txnSubType ?? '01',
    22: '000201',
    27: l.origQueryId ?? '',
    28: l.merId ?? '',
    33: sign(l.netFen ?? l.amountFen - (l.feeFen ?? 0), 'C'),
    34: l.terminalId ?? '',
  };
  const out = Buffer.alloc(ZM_LINE_BYTES, 0x20);
  for (const [k, v] of Object.entries(values)) {
    const i = Number(k) - 1;
    // ASCII is the same in GBK; only text with Chinese needs the encoder.
    const b = /^[\x20-\x7e]*$/.test(v) ? Buffer.from(v, 'latin1') : iconv.encode(v, 'gbk');
    if (b.length > ZM_WIDTHS[i]) throw new Error(`field ${i + 1} is wider than ${ZM_WIDTHS[i]} bytes`);
    b.copy(out, OFFSETS[i]);
  }
  return out;
}

function sign(v: number, positive: 'C' | 'D'): string {
  const neg = positive === 'C' ? 'D' : 'C';
  return (v >= 0 ? positive : neg) + String(Math.abs(v)).padStart(12, '0');
}
