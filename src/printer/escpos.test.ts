import fc from 'fast-check';
import { EscPos, columns, spread } from './escpos';
import { EscPosDecoder, PrinterEvent } from './escpos-decoder';
import { docToEscPos, docToText, ReceiptDoc } from '../receipts/receipt-doc';
import { isOrderCode, orderCodeOf, orderIdOfCode } from '../receipts/order-code';

const hex = (b: Buffer) => b.toString('hex');

describe('ESC/POS encoder against byte fixtures', () => {
  it('init and Chinese mode are ESC @ and FS &', () => {
    expect(hex(new EscPos().init().chinese().bytes())).toBe('1b40' + '1c26');
  });

  it('Chinese text is GB18030, two bytes a character for GB2312 ones and four beyond', () => {
    expect(hex(new EscPos().line('合计 12.00').bytes())).toBe('bacfbcc6' + hex(Buffer.from(' 12.00')) + '0a');
    expect(hex(new EscPos().text('重印').bytes())).toBe('d6d8d3a1');
    expect(hex(new EscPos().text('𠀀').bytes())).toBe('95328236');
  });

  it('bold and double size switch on and back off', () => {
    expect(hex(new EscPos().bold(true).double(true).double(false).bold(false).bytes())).toBe(
      '1b4501' + '1d2111' + '1d2100' + '1b4500',
    );
  });

  it('the cut is GS V 66 0 (feed to the cutter, partial cut)', () => {
    expect(hex(new EscPos().cut().bytes())).toBe('1d564200');
  });

  it('the drawer kick is ESC p on pin 2 with a 50 ms pulse', () => {
    expect(hex(new EscPos().drawerKick().bytes())).toBe('1b70' + '00' + '19' + 'fa');
  });

  it('a Code128 of digits uses set C, two digits a byte', () => {
    expect(hex(new EscPos().code128Digits('012345').bytes())).toBe(
      '1d6850' + '1d7702' + '1d4802' + '1d6b49' + '05' + '7b43' + '01' + '17' + '2d',
    );
    expect(() => new EscPos().code128Digits('123')).toThrow(/even/);
  });
});

describe('ESC/POS decoder (the simulator side)', () => {
  const decodeAll = (b: Buffer, chunk = b.length) => {
    const d = new EscPosDecoder();
    const out: PrinterEvent[] = [];
    for (let i = 0; i < b.length; i += chunk) out.push(...d.feed(b.subarray(i, i + chunk)));
    return out;
  };
  const doc: ReceiptDoc = {
    lines: [
      { text: '示例商店', bold: true, double: true, align: 'center' },
      { text: '合计                 12.00' },
      { barcode: orderCodeOf('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0') },
      { text: '谢谢惠顾', align: 'center' },
    ],
  };

  it('gives back the text form of a receipt, the drawer kick and the cut', () => {
    const events = decodeAll(docToEscPos(doc, { drawerKick: true }));
    expect(events.filter((e) => e.kind === 'drawer')).toEqual([{ kind: 'drawer', pin: 2, onMs: 50, offMs: 500 }]);
    expect(events[events.length - 1]).toEqual({ kind: 'cut' });
    const text = events
      .map((e) => (e.kind === 'line' ? e.text : e.kind === 'barcode' ? `[条码 ${e.data}]` : null))
      .filter((x) => x !== null);
    expect(text.join('\n').trimEnd() + '\n').toBe(docToText(doc));
  });

  it('a job split anywhere on the line decodes the same', () => {
    const job = docToEscPos(doc, { drawerKick: true });
    const whole = decodeAll(job);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 17 }), (n) => {
        expect(decodeAll(job, n)).toEqual(whole);
      }),
    );
  });

  it('answers DLE EOT wherever it comes', () => {
    expect(decodeAll(Buffer.from('10040141100404', 'hex'))).toEqual([
      { kind: 'status', n: 1 },
      { kind: 'status', n: 4 },
    ]);
  });
});

describe('receipt line layout', () => {
  it('counts CJK characters as two columns', () => {
    expect(columns('合计a')).toBe(5);
    expect(spread('合计', '12.00', 12)).toBe('合计   12.00');
  });
});

describe('order code on the receipt', () => {
  it('is 40 digits and turns back into the order id', () => {
    fc.assert(
      fc.property(fc.uuid(), (id) => {
        const code = orderCodeOf(id);
        expect(code).toMatch(/^\d{40}$/);
        expect(isOrderCode(code)).toBe(true);
        expect(orderIdOfCode(code)).toBe(id.toLowerCase());
      }),
    );
  });
  it('refuses what is not one', () => {
    expect(isOrderCode('6901234567892')).toBe(false);
    expect(isOrderCode('9'.repeat(40))).toBe(false);
  });
});
