/**
 * The ESC/POS bytes a receipt printer understands, built by hand: the commands are a handful of
 * fixed sequences. Chinese text goes through iconv-lite as GB18030 inside the printer's Chinese
 * mode (FS &), because the common ESC/POS encoder libraries only know single-byte code pages and
 * would turn 合计 into question marks.
 */
import iconv from 'iconv-lite';

export const ESC = 0x1b;
export const GS = 0x1d;
export const FS = 0x1c;
export const DLE = 0x10;
export const EOT = 0x04;
export const LF = 0x0a;

/** DLE EOT n: n = 1 printer status, n = 4 paper roll sensor. Answered in real time with one byte. */
export const STATUS_PRINTER = Buffer.from([DLE, EOT, 1]);
export const STATUS_PAPER = Buffer.from([DLE, EOT, 4]);

/** Bit 3 of the DLE EOT 1 answer: the printer is offline (cover open, paper end, error). */
export const OFFLINE_BIT = 0x08;
/** Bits 5 and 6 of the DLE EOT 4 answer: the paper roll is at its end. */
export const PAPER_END_BITS = 0x60;
/** Bits 2 and 3: the roll is near its end (still prints). */
export const PAPER_NEAR_END_BITS = 0x0c;
/** Bits 1 and 4 are always set in a status byte; a reply without them is line noise. */
export const STATUS_FIXED_BITS = 0x12;

export type Align = 'left' | 'center' | 'right';

/** Builds one print job. Each method appends and returns `this`; `bytes()` gives the job. */
export class EscPos {
  private readonly parts: Buffer[] = [];

  private raw(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  /** ESC @: back to power-on settings, so one job's bold or size never leaks into the next. */
  init(): this {
    return this.raw(ESC, 0x40);
  }

  /** FS &: two-byte Chinese characters on (the printer reads GB18030/GBK from here on). */
  chinese(): this {
    return this.raw(FS, 0x26);
  }

  /** ESC E n */
  bold(on: boolean): this {
    return this.raw(ESC, 0x45, on ? 1 : 0);
  }

  /** GS ! n: double width and height (0x11) or normal (0x00). */
  double(on: boolean): this {
    return this.raw(GS, 0x21, on ? 0x11 : 0x00);
  }

  /** ESC a n */
  align(a: Align): this {
    return this.raw(ESC, 0x61, a === 'left' ? 0 : a === 'center' ? 1 : 2);
  }

  text(s: string): this {
    this.parts.push(iconv.encode(s, 'gb18030'));
    return this;
  }

  line(s = ''): this {
    return this.text(s).raw(LF);
  }

  /** ESC d n: feed n lines. */
  feed(n: number): this {
    return this.raw(ESC, 0x64, Math.max(0, Math.min(255, n)));
  }

  /** GS V 66 0: feed to the cutter and cut (partial cut, the usual for receipts). */
  cut(): this {
    return this.raw(GS, 0x56, 0x42, 0x00);
  }

  /** ESC p 0 25 250: a 50 ms pulse on drawer pin 2, 500 ms off; the drawer hangs off the printer. */
  drawerKick(): this {
    return this.raw(ESC, 0x70, 0x00, 0x19, 0xfa);
  }

  /**
   * GS k 73 n {C …: a Code128 barcode of an even-length digit string in code set C (two digits a
   * symbol, so 40 digits fit an 80 mm roll at module width 2), human-readable digits below.
   */
  code128Digits(digits: string): this {
    if (!/^(\d\d)+$/.test(digits) || digits.length > 200) throw new Error('code set C needs an even number of digits');
    const pairs = digits.match(/\d\d/g)!.map(Number);
    this.raw(GS, 0x68, 80); // GS h: 80 dots high
    this.raw(GS, 0x77, 2); // GS w: module width 2
    this.raw(GS, 0x48, 2); // GS H: digits below
    return this.raw(GS, 0x6b, 73, pairs.length + 2, 0x7b, 0x43, ...pairs);
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Display width on a receipt line: CJK characters take two columns. */
export function columns(s: string): number {
  let w = 0;
  for (const ch of s)
    w +=
      /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]|[\u{20000}-\u{3fffd}]/u.test(
        ch,
      )
        ? 2
        : 1;
  return w;
}

/** `left … right` padded to `width` columns (the right part wins when both do not fit). */
export function spread(left: string, right: string, width: number): string {
  const gap = width - columns(left) - columns(right);
  return gap >= 1
    ? left + ' '.repeat(gap) + right
    : `${left}\n${' '.repeat(Math.max(0, width - columns(right)))}${right}`;
}
