/**
 * `pos sim-terminal --port PATH [--script FILE] [--control HOST:PORT] [--acquirer URL] [--baud N]`:
 * the terminal simulator on a real serial device (for example one end of a socat pty pair), so a
 * till — ours or anyone's — can be pointed at it. `--control` serves a small HTTP API to script it
 * while it runs: POST /rules (one rule or a list, used in order), PUT /script, GET /journal.
 */
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { autoDetect } from '@serialport/bindings-cpp';
import { SimBankPort } from '../acquirer/sim-bank';
import { SimRule, SimScript } from './ecr-simulator';
import { runSimulatorOnPort } from './sim-port';

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 1_000_000) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
}

export async function runSimTerminal(args: string[]): Promise<void> {
  const path = arg(args, '--port');
  if (!path)
    throw new Error(
      'usage: pos sim-terminal --port PATH [--script FILE] [--control HOST:PORT] [--acquirer URL] [--baud N]',
    );
  const scriptFile = arg(args, '--script');
  const script: SimScript | undefined = scriptFile ? JSON.parse(readFileSync(scriptFile, 'utf8')) : undefined;
  const acquirerUrl = arg(args, '--acquirer');
  let bank: SimBankPort | undefined;
  if (acquirerUrl) bank = new (await import('../acquirer/bank-http')).HttpSimBank(acquirerUrl);

  const sim = await runSimulatorOnPort(autoDetect(), path, {
    bank,
    script,
    baudRate: Number(arg(args, '--baud') ?? 9600),
    exitOnClose: true,
    onClose: () => {
      process.stdout.write('sim-terminal: port closed by script; exiting\n');
      setTimeout(() => process.exit(0), 50);
    },
  });
  const simulator = sim.simulator;
  simulator.on('request', (m: Record<string, string>) =>
    process.stdout.write(`sim-terminal: ${m.MT} SQ=${m.SQ}${m.RF ? ` RF=${m.RF}` : ''}${m.AM ? ` AM=${m.AM}` : ''}\n`),
  );
  process.stdout.write(`sim-terminal ready on ${path}\n`);

  const control = arg(args, '--control');
  if (control) {
    const [host, port] = control.split(':');
    const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      try {
        if (req.method === 'POST' && req.url === '/rules') {
          const b = await body(req);
          const rules = (Array.isArray(b) ? b : [b]) as SimRule[];
          for (const r of rules) simulator.expect(r);
          return send(200, { queued: rules.length });
        }
        if (req.method === 'PUT' && req.url === '/script') {
          simulator.setScript((await body(req)) as SimScript);
          return send(200, { ok: true });
        }
        if (req.method === 'GET' && req.url === '/journal') return send(200, [...simulator.journal.values()]);
        if (req.method === 'GET' && req.url === '/healthz') return send(200, { ok: true });
        return send(404, { error: 'not found' });
      } catch (err) {
        return send(400, { error: String(err) });
      }
    });
    await new Promise<void>((r) => server.listen(Number(port || 0), host || '127.0.0.1', r));
    process.stdout.write(
      `sim-terminal control on http://${host || '127.0.0.1'}:${(server.address() as AddressInfo).port}\n`,
    );
  }
  const stop = async () => {
    await sim.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
