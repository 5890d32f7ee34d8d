/**
 * An ESC/POS printer on a serial line (@serialport/stream with an injected binding: the OS one for
 * /dev/ttyUSB*, a null-modem pair for the built-in simulator). Reopens the port when it goes away.
 * One operation at a time: a status question's answer byte must not be taken for anything else.
 */
import { SerialPortStream } from '@serialport/stream';
import type { BindingInterface } from '@serialport/bindings-interface';
import { Logger, silentLogger } from '../shared/logger';
import {
  OFFLINE_BIT,
  PAPER_END_BITS,
  PAPER_NEAR_END_BITS,
  STATUS_FIXED_BITS,
  STATUS_PAPER,
  STATUS_PRINTER,
} from './escpos';
import { Printer, PrinterStatus } from './printer';

export interface SerialPrinterOptions {
  path: string;
  baudRate?: number;
  binding: BindingInterface;
  /** How long a DLE EOT answer may take before the printer counts as away. */
  tStatusMs?: number;
  reconnectMs?: number;
  log?: Logger;
}

export class SerialPrinter implements Printer {
  private port: SerialPortStream | null = null;
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private waiter: ((b: number) => void) | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private missed = false;
  private readonly log: Logger;

  constructor(
    readonly lane: string,
    private readonly opts: SerialPrinterOptions,
  ) {
    this.log = opts.log ?? silentLogger;
  }

  async start(): Promise<this> {
    await this.open().catch((err) => {
      this.log.warn('printer port could not be opened; retrying', {
        lane: this.lane,
        path: this.opts.path,
        err: String(err),
      });
      this.scheduleReconnect();
    });
    return this;
  }

  isConnected(): boolean {
    return this.port !== null;
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const port = new SerialPortStream({
        binding: this.opts.binding,
        path: this.opts.path,
        baudRate: this.opts.baudRate ?? 9600,
        autoOpen: false,
      });
      port.on('data', (d: Buffer) => {
        for (const b of d) {
          const w = this.waiter;
          this.waiter = null;
          w?.(b);
        }
      });
      port.on('error', (err) => this.log.warn('printer port error', { lane: this.lane, err: String(err) }));
      port.on('close', () => {
        if (port !== this.port) return;
        this.port = null;
        if (!this.closing) {
          this.log.warn('printer line went away; reconnecting', { lane: this.lane });
          this.scheduleReconnect();
        }
      });
      port.open((err) => {
        if (err) return reject(err);
        this.port = port;
        this.log.info('printer connected', { lane: this.lane, path: this.opts.path });
        resolve();
      });
    });
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open().catch(() => this.scheduleReconnect());
    }, this.opts.reconnectMs ?? 1000);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async ask(q: Buffer): Promise<number | null> {
    const port = this.port;
    if (!port) return null;
    if (this.missed) {
      // Questions left unanswered while the printer was away may be answered now that it is back:
      // let those late bytes fall on the floor (no waiter) before asking again.
      this.missed = false;
      await new Promise((r) => setTimeout(r, 150));
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = null;
        this.missed = true;
        resolve(null);
      }, this.opts.tStatusMs ?? 1000);
      this.waiter = (b) => {
        clearTimeout(t);
        resolve(b);
      };
      port.write(q);
    });
  }

  status(): Promise<PrinterStatus> {
    return this.serial(async () => {
      const printer = await this.ask(STATUS_PRINTER);
      if (printer === null || (printer & STATUS_FIXED_BITS) !== STATUS_FIXED_BITS)
        return { state: 'away', paperNearEnd: false };
      const paper = await this.ask(STATUS_PAPER);
      if (paper === null) return { state: 'away', paperNearEnd: false };
      const paperNearEnd = (paper & PAPER_NEAR_END_BITS) !== 0;
      if ((paper & PAPER_END_BITS) !== 0) return { state: 'paper_out', paperNearEnd };
      if (printer & OFFLINE_BIT) return { state: 'offline', paperNearEnd };
      return { state: 'ready', paperNearEnd };
    });
  }

  print(job: Buffer): Promise<void> {
    return this.serial(
      () =>
        new Promise<void>((resolve, reject) => {
          const port = this.port;
          if (!port) return reject(new Error('printer not connected'));
          // A line held up by flow control must not stall the print queue: twice the time the bytes need at this speed, 5 s at least.
          const ms = Math.max(5000, Math.ceil((job.length * 10 * 1000 * 2) / (this.opts.baudRate ?? 9600)));
          const t = setTimeout(() => reject(new Error(`printer did not take the job within ${ms} ms`)), ms);
          port.write(job, (err) => {
            if (err) {
              clearTimeout(t);
              return reject(err);
            }
            port.drain((e) => {
              clearTimeout(t);
              if (e) reject(e);
              else resolve();
            });
          });
        }),
    );
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
}
