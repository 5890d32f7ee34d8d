/**
 * `pos sim-printer --port PATH --out DIR [--control HOST:PORT] [--baud N]`: an ESC/POS receipt
 * printer on a serial device (for example one end of a socat pty pair). One text file per receipt
 * in DIR, drawer kicks and cuts in DIR/events.log. Out of paper: SIGUSR1 toggles it, or
 * `POST /paper {"out": true}` on the control API; `GET /state` tells what it did.
 */
import { autoDetect } from '@serialport/bindings-cpp';
import { runPrinterSimOnPort } from './printer-simulator';
import { arg, exitOnSignals, serveControl } from '../shared/sim-control';

const USAGE = 'usage: pos sim-printer --port PATH --out DIR [--control HOST:PORT] [--baud N]';

export async function runSimPrinter(args: string[]): Promise<void> {
  const path = arg(args, '--port');
  const out = arg(args, '--out');
  if (!path || !out) throw new Error(USAGE);
  const sim = await runPrinterSimOnPort(autoDetect(), path, out, { baudRate: Number(arg(args, '--baud') ?? 9600) });
  const p = sim.simulator;
  const setPaper = (outOfPaper: boolean) => {
    p.paperOut = outOfPaper;
    process.stdout.write(`sim-printer: paper ${outOfPaper ? 'out' : 'in'}\n`);
  };
  process.on('SIGUSR1', () => setPaper(!p.paperOut));
  process.stdout.write(`sim-printer ready on ${path}, receipts in ${out}\n`);

  const control = arg(args, '--control');
  if (control)
    await serveControl('sim-printer', control, async (method, url, body) => {
      if (method === 'POST' && url === '/paper') {
        const b = (await body()) as { out?: unknown };
        if (typeof b?.out !== 'boolean') return [400, { error: 'send {"out": true|false}' }];
        setPaper(b.out);
        return [200, { paperOut: p.paperOut }];
      }
      if (method === 'GET' && url === '/state')
        return [200, { paperOut: p.paperOut, receipts: p.receipts, drawerKicks: p.drawerKicks }];
      return undefined;
    });
  exitOnSignals(() => sim.close());
}
