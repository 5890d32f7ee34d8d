import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesDir } from '../../test/support/fixtures';
import { readReconZip, streamToBuffer, writeReconZip, ZmRecord } from './recon-zip';
import { dayFromMmdd, settleDayOfTxnTime, txnTimeRange } from './settle-day';
import { formatZmLine, parseZmLine, ZM_LINE_BYTES } from './zm-format';

const sample = () => join(fixturesDir(), 'unionpay', 'recon', '802310048993424_20150905.zip');

describe('UnionPay sample reconciliation file', () => {
  it('parses to the spec numbers: line 1 and the RD totals', async () => {
    const lines: ZmRecord[] = [];
    const r = await readReconZip(sample(), async (b) => {
      lines.push(...b);
    });
    expect(r.problems).toEqual([]);
    expect(r.merId).toBe('802310048993424');
    expect(lines).toHaveLength(8);
    expect(lines[0].line).toMatchObject({
      amountFen: 476800,
      feeFen: 2861,
      settleFen: 473939,
      txnType: '01',
      merId: '802310048993424',
    });
    expect(lines[0].line.rf.length).toBeGreaterThan(0);
    expect(r.rd).toEqual({ count: 8, amountFen: 1322700, feeFen: 7936, netFen: 1314764 });
    expect(r.detail).toEqual(r.rd);
  });
});

describe('ZM lines', () => {
  it('slices bytes, not characters: a GBK field does not shift the ones after it', () => {
    const b = formatZmLine({
      amountFen: 1234,
      rf: '订单ABC',
      terminalId: '12345678',
      traceNo: '000042',
      feeFen: 7,
      txnType: '04',
      origQueryId: 'Q1',
    });
    expect(b.length).toBe(ZM_LINE_BYTES);
    expect(parseZmLine(b)).toMatchObject({
      amountFen: 1234,
      rf: '订单ABC',
      terminalId: '12345678',
      traceNo: '000042',
      feeFen: 7,
      txnType: '04',
      origQueryId: 'Q1',
    });
  });

  it('reads fields 1–40 of a longer line and refuses a truncated one', () => {
    const b = formatZmLine({ amountFen: 5, rf: 'X' });
    expect(parseZmLine(Buffer.concat([b, Buffer.from(' EXTRA FIELDS')])).rf).toBe('X');
    expect(() => parseZmLine(b.subarray(0, 300))).toThrow(/shorter/);
  });

  it('round-trips a written ZIP and reports totals that disagree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zm-'));
    try {
      const lines = [
        formatZmLine({ amountFen: 100, rf: 'A' }),
        formatZmLine({ amountFen: 40, rf: 'B', txnType: '04' }),
      ];
      const path = join(dir, 'f.zip');
      writeFileSync(
        path,
        await streamToBuffer(
          writeReconZip({
            merId: '777290058110048',
            settleDay: '2026-11-24',
            lines,
            totals: (d) => ({ ...d, amountFen: d.amountFen + 1 }),
          }),
        ),
      );
      const r = await readReconZip(path, async () => undefined);
      expect(r.detail).toMatchObject({ count: 2, amountFen: 60 });
      expect(r.rd).toMatchObject({ count: 2, amountFen: 61 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('settlement days', () => {
  it('puts a trade after 23:00 China time in the next day', () => {
    expect(settleDayOfTxnTime('20261124225959')).toBe('2026-11-24');
    expect(settleDayOfTxnTime('20261124230000')).toBe('2026-11-25');
    expect(settleDayOfTxnTime('20261231233000')).toBe('2027-01-01');
    expect(txnTimeRange('2026-11-25')).toEqual({ from: '20261124230000', to: '20261125230000' });
  });

  it('gives MMDD the year nearest to when it was written (turn of the year)', () => {
    expect(dayFromMmdd('0101', '2026-12-31')).toBe('2027-01-01');
    expect(dayFromMmdd('1231', '2027-01-01')).toBe('2026-12-31');
    expect(dayFromMmdd('0905', '2015-09-06')).toBe('2015-09-05');
  });
});
