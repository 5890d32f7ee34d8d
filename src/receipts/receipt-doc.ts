/**
 * A receipt as lines with a little style, so the paper (ESC/POS) and the text the API and the
 * screen show come from one description and cannot disagree.
 */
import { Align, EscPos } from '../printer/escpos';

export type ReceiptLine = { text: string; bold?: boolean; double?: boolean; align?: Align } | { barcode: string };

export interface ReceiptDoc {
  lines: ReceiptLine[];
}

/** Columns of an 80 mm roll in font A. */
export const WIDTH = 48;

/** How the barcode shows in the text form (and how the simulator writes what it decoded). */
export const barcodeText = (digits: string) => `[条码 ${digits}]`;

/** The words exactly as printed; alignment and size are the printer's business. */
export function docToText(doc: ReceiptDoc): string {
  return doc.lines.map((l) => ('barcode' in l ? barcodeText(l.barcode) : l.text)).join('\n') + '\n';
}

/** The print job: init, Chinese mode, the drawer first (it opens while the paper runs), the lines, feed, cut. */
export function docToEscPos(doc: ReceiptDoc, opts: { drawerKick?: boolean } = {}): Buffer {
  const p = new EscPos().init().chinese();
  if (opts.drawerKick) p.drawerKick();
  for (const l of doc.lines) {
    if ('barcode' in l) {
      // GS k prints at once (bars and digits); no LF after it.
      p.align('center').code128Digits(l.barcode).align('left');
      continue;
    }
    if (l.align && l.align !== 'left') p.align(l.align);
    if (l.bold) p.bold(true);
    if (l.double) p.double(true);
    p.line(l.text);
    if (l.double) p.double(false);
    if (l.bold) p.bold(false);
    if (l.align && l.align !== 'left') p.align('left');
  }
  return p.feed(4).cut().bytes();
}

/** The ESC/POS job that only opens the drawer (cash taken while the paper is out). */
export function drawerOnly(): Buffer {
  return new EscPos().init().drawerKick().bytes();
}
