/**
 * POS_PRINTERS: `LANE:PATH[@BAUD]` or `LANE:sim`, comma separated (one printer per lane).
 * `sim` runs the real driver against the printer simulator over an in-memory null-modem cable,
 * writing its receipts under POS_RECEIPTS_DIR (default ./data/receipts/LANE).
 */
import { join } from 'node:path';
import { autoDetect } from '@serialport/bindings-cpp';
import { Logger } from '../shared/logger';
import { NullModemBinding } from '../terminal/null-modem';
import { Printer } from './printer';
import { PrinterSimulator, runPrinterSimOnPort } from './printer-simulator';
import { SerialPrinter } from './serial-printer';
import { LaneDevice, parseLaneDevices } from '../shared/lane-devices';

export type PrinterSpec = LaneDevice;

export function parsePrintersEnv(value: string): PrinterSpec[] {
  return parseLaneDevices('POS_PRINTERS', value);
}

export interface SimulatedPrinter {
  printer: SerialPrinter;
  simulator: PrinterSimulator;
  close(): Promise<void>;
}

export async function createSimulatedPrinter(
  lane: string,
  outDir: string,
  opts: { log?: Logger; tStatusMs?: number } = {},
): Promise<SimulatedPrinter> {
  const binding = new NullModemBinding();
  binding.pair(`${lane}/printer-host`, `${lane}/printer`);
  const sim = await runPrinterSimOnPort(binding, `${lane}/printer`, outDir);
  const printer = await new SerialPrinter(lane, {
    binding,
    path: `${lane}/printer-host`,
    log: opts.log,
    tStatusMs: opts.tStatusMs ?? 500,
    reconnectMs: 250,
  }).start();
  return {
    printer,
    simulator: sim.simulator,
    close: async () => {
      await printer.close();
      await sim.close();
    },
  };
}

/** Opens every printer of POS_PRINTERS; the caller closes them with `close()`. */
export async function openPrinters(
  value: string,
  receiptsDir: string,
  log?: Logger,
): Promise<{ printers: Map<string, Printer>; descriptions: string[]; close(): Promise<void> }> {
  const printers = new Map<string, Printer>();
  const closers: (() => Promise<void>)[] = [];
  const descriptions: string[] = [];
  try {
    for (const spec of parsePrintersEnv(value)) {
      if (spec.kind === 'sim') {
        const dir = join(receiptsDir, spec.lane);
        const sim = await createSimulatedPrinter(spec.lane, dir, { log });
        closers.push(() => sim.close());
        printers.set(spec.lane, sim.printer);
        descriptions.push(`${spec.lane}: simulated, receipts in ${dir}`);
      } else {
        const p = await new SerialPrinter(spec.lane, {
          binding: autoDetect(),
          path: spec.path,
          baudRate: spec.baudRate,
          log,
        }).start();
        closers.push(() => p.close());
        printers.set(spec.lane, p);
        descriptions.push(`${spec.lane}: ${spec.path}@${spec.baudRate}`);
      }
    }
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    throw err;
  }
  return {
    printers,
    descriptions,
    close: async () => {
      for (const c of closers.reverse()) await c().catch(() => undefined);
    },
  };
}
