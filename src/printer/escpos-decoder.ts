/**
 * Reads an ESC/POS byte stream back into what a person would see on the paper: lines of text, the
 * barcode, the cut, the drawer kick, and the status questions a printer must answer at once. The
 * printer simulator is built on it; so are the tests of the encoder.
 */
import iconv from 'iconv-lite';
import { DLE, EOT, ESC, FS, GS, LF } from './escpos';

export type PrinterEvent =
  | { kind: 'line'; text: string }
  | { kind: 'barcode'; data: string }
  | { kind: 'cut' }
  | { kind: 'drawer'; pin: number; onMs: number; offMs: number }
  | { kind: 'status'; n: number }
  | { kind: 'init' };

/** Fixed lengths of the commands we meet (ESC x …, GS x …, FS x …), counting the two lead bytes. */
const ESC_LEN: Record<number, number> = {
  0x40: 2,
  0x45: 3,
  0x61: 3,
  0x64: 3,
  0x70: 5,
  0x21: 3,
  0x2d: 3,
  0x32: 2,
  0x33: 3,
  0x74: 3,
  0x4d: 3,
  0x4a: 3,
  0x47: 3,
  0x52: 3,
};
const GS_LEN: Record<number, number> = { 0x21: 3, 0x68: 3, 0x77: 3, 0x48: 3, 0x66: 3, 0x42: 3 };
const FS_LEN: Record<number, number> = { 0x26: 2, 0x2e: 2, 0x21: 3, 0x2d: 3 };

export class EscPosDecoder {
  private pending = Buffer.alloc(0);
  private text: number[] = [];

  feed(chunk: Buffer): PrinterEvent[] {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: PrinterEvent[] = [];
    let i = 0;
    while (i < buf.length) {
      const used = this.step(buf, i, out);
      if (used === 0) break; // a command cut in half by the line: wait for the rest
      i += used;
    }
    this.pending = Buffer.from(buf.subarray(i));
    return out;
  }

  /** Text received but not yet ended by LF (a cut ends it too). */
  private flushLine(out: PrinterEvent[], always: boolean): void {
    if (this.text.length || always) out.push({ kind: 'line', text: iconv.decode(Buffer.from(this.text), 'gb18030') });
    this.text = [];
  }

  /** Consumes one command or one text byte at `i`; returns how many bytes, or 0 when more are needed. */
  private step(b: Buffer, i: number, out: PrinterEvent[]): number {
    const c = b[i];
    const left = b.length - i;
    if (c === LF) {
      this.flushLine(out, true);
      return 1;
    }
    if (c === DLE) {
      if (left < 3) return 0;
      if (b[i + 1] === EOT) out.push({ kind: 'status', n: b[i + 2] });
      return 3;
    }
    if (c === ESC) {
      if (left < 2) return 0;
      const len = ESC_LEN[b[i + 1]] ?? 2;
      if (left < len) return 0;
      if (b[i + 1] === 0x40) out.push({ kind: 'init' });
      if (b[i + 1] === 0x70)
        out.push({ kind: 'drawer', pin: b[i + 2] & 1 ? 5 : 2, onMs: b[i + 3] * 2, offMs: b[i + 4] * 2 });
      return len;
    }
    if (c === FS) {
      if (left < 2) return 0;
      const len = FS_LEN[b[i + 1]] ?? 2;
      return left < len ? 0 : len;
    }
    if (c === GS) {
      if (left < 2) return 0;
      const op = b[i + 1];
      if (op === 0x56) {
        // GS V m [n]
        if (left < 3) return 0;
        const len = b[i + 2] >= 65 ? 4 : 3;
        if (left < len) return 0;
        this.flushLine(out, false);
        out.push({ kind: 'cut' });
        return len;
      }
      if (op === 0x6b) return this.barcode(b, i, out);
      const len = GS_LEN[op] ?? 3;
      return left < len ? 0 : len;
    }
    if (c < 0x20 && c !== 0x09) return 1; // CR and other controls print nothing
    this.text.push(c);
    return 1;
  }

  /** GS k m …: function A (m ≤ 6) ends with NUL; function B (m ≥ 65) gives its length. Code128 sets are shown as digits/text. */
  private barcode(b: Buffer, i: number, out: PrinterEvent[]): number {
    const left = b.length - i;
    if (left < 3) return 0;
    const m = b[i + 2];
    if (m <= 6) {
      const end = b.indexOf(0, i + 3);
      if (end < 0) return 0;
      out.push({ kind: 'barcode', data: b.subarray(i + 3, end).toString('latin1') });
      return end + 1 - i;
    }
    if (left < 4) return 0;
    const n = b[i + 3];
    if (left < 4 + n) return 0;
    const data = b.subarray(i + 4, i + 4 + n);
    out.push({ kind: 'barcode', data: m === 73 ? code128Text(data) : data.toString('latin1') });
    return 4 + n;
  }
}

/** Code128 data as sent with GS k 73: `{A`/`{B` switch to text, `{C` to digit pairs. */
function code128Text(data: Buffer): string {
  let set = 'B';
  let s = '';
  for (let j = 0; j < data.length; j++) {
    if (data[j] === 0x7b && j + 1 < data.length) {
      const sel = String.fromCharCode(data[j + 1]);
      if ('ABC'.includes(sel)) {
        set = sel;
        j++;
        continue;
      }
    }
    s += set === 'C' ? String(data[j]).padStart(2, '0') : String.fromCharCode(data[j]);
  }
  return s;
}
