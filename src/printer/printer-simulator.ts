/**
 * A receipt printer, simulated: the device end of the serial line. It decodes what it receives into
 * one text file per receipt (a cut ends a receipt), logs drawer kicks and cuts to `events.log`,
 * and answers DLE EOT like a real printer. Told it is out of paper, it says so and prints nothing
 * (a real printer keeps the job in no buffer either).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPortStream } from '@serialport/stream';
import type { BindingInterface } from '@serialport/bindings-interface';
import { EscPosDecoder } from './escpos-decoder';
import { OFFLINE_BIT, PAPER_END_BITS, STATUS_FIXED_BITS } from './escpos';
import { barcodeText } from '../receipts/receipt-doc';

export class PrinterSimulator {
  private decoder = new EscPosDecoder();
  private lines: string[] = [];
  private seq = 0;
  paperOut = false;
  /** What it has done, newest last (tests read it; the files are the real output). */
  readonly receipts: { file: string; text: string }[] = [];
  readonly drawerKicks: string[] = [];

  constructor(
    private readonly outDir: string,
    private readonly reply: (b: Buffer) => void,
  ) {
    mkdirSync(outDir, { recursive: true });
  }

  feed(chunk: Buffer): void {
    for (const e of this.decoder.feed(chunk)) {
      const at = new Date().toISOString();
      switch (e.kind) {
        case 'status':
          this.reply(Buffer.from([this.statusByte(e.n)]));
          break;
        case 'drawer':
          this.drawerKicks.push(at);
          this.log(`${at} drawer-kick pin=${e.pin} on=${e.onMs}ms off=${e.offMs}ms`);
          break;
        case 'line':
          if (!this.paperOut) this.lines.push(e.text);
          break;
        case 'barcode':
          if (!this.paperOut) this.lines.push(barcodeText(e.data));
          break;
        case 'cut':
          if (this.paperOut) {
            this.log(`${at} cut ignored: out of paper`);
            break;
          }
          this.finishReceipt(at);
          break;
        case 'init':
          break;
      }
    }
  }

  private statusByte(n: number): number {
    if (n === 1) return STATUS_FIXED_BITS | (this.paperOut ? OFFLINE_BIT : 0);
    if (n === 4) return STATUS_FIXED_BITS | (this.paperOut ? PAPER_END_BITS : 0);
    return STATUS_FIXED_BITS;
  }

  private finishReceipt(at: string): void {
    const text = this.lines.join('\n') + '\n';
    this.lines = [];
    const file = join(this.outDir, `${at.replace(/[:.]/g, '-')}-${String(++this.seq).padStart(4, '0')}.txt`);
    writeFileSync(file, text);
    this.receipts.push({ file, text });
    this.log(`${at} cut ${file}`);
  }

  private log(line: string): void {
    appendFileSync(join(this.outDir, 'events.log'), `${line}\n`);
  }
}

export interface PrinterSimOnPort {
  simulator: PrinterSimulator;
  close(): Promise<void>;
}

export async function runPrinterSimOnPort(
  binding: BindingInterface,
  path: string,
  outDir: string,
  opts: { baudRate?: number } = {},
): Promise<PrinterSimOnPort> {
  let port: SerialPortStream | null = null;
  const simulator = new PrinterSimulator(outDir, (b) => {
    port?.write(b);
  });
  await new Promise<void>((resolve, reject) => {
    const p = new SerialPortStream({ binding, path, baudRate: opts.baudRate ?? 9600, autoOpen: false });
    p.on('data', (d: Buffer) => simulator.feed(d));
    p.on('error', () => undefined);
    p.open((err) => (err ? reject(err) : ((port = p), resolve())));
  });
  return {
    simulator,
    close: async () => {
      const p = port;
      port = null;
      if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
    },
  };
}
