/**
 * `pos sim-printer --port PATH --out DIR [--control HOST:PORT] [--baud N]`: an ESC/POS receipt
 * printer on a serial device (for example one end of a socat pty pair). One text file per receipt
 * in DIR, drawer kicks and cuts in DIR/events.log. Out of paper: SIGUSR1 toggles it, or
 * `POST /paper {"out": true}` on the control API; `GET /state` tells what it did.
 */
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { autoDetect } from '@serialport/bindings-cpp';
import { runPrinterSimOnPort } from './printer-simulator';

const USAGE = 'usage: pos sim-printer --port PATH --out DIR [--control HOST:PORT] [--baud N]';

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function body(req: IncomingMessage): Promise<unknown> {
  let s = '';
  for await (const c of req) {
    s += c;
    if (s.length > 10_000) throw new Error('body too large');
  }
  return JSON.parse(s || 'null');
}

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
  if (control) {
    const [host, port] = control.split(':');
    const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      try {
        if (req.method === 'POST' && req.url === '/paper') {
          const b = (await body(req)) as { out?: unknown };
          if (typeof b?.out !== 'boolean') return send(400, { error: 'send {"out": true|false}' });
          setPaper(b.out);
          return send(200, { paperOut: p.paperOut });
        }
        if (req.method === 'GET' && req.url === '/state')
          return send(200, { paperOut: p.paperOut, receipts: p.receipts, drawerKicks: p.drawerKicks });
        return send(404, { error: 'not found' });
      } catch (err) {
        return send(400, { error: String(err) });
      }
    });
    await new Promise<void>((r) => server.listen(Number(port || 0), host || '127.0.0.1', r));
    process.stdout.write(
      `sim-printer control on http://${host || '127.0.0.1'}:${(server.address() as AddressInfo).port}\n`,
    );
  }
  const stop = async () => {
    await sim.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
