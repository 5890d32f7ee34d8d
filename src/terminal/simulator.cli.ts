/**
 * `pos sim-terminal --port PATH [--script FILE] [--control HOST:PORT] [--acquirer URL] [--baud N]`:
 * the terminal simulator on a real serial device (for example one end of a socat pty pair), so a
 * till — ours or anyone's — can be pointed at it. `--control` serves a small HTTP API to script it
 * while it runs: POST /rules (one rule or a list, used in order), PUT /script, GET /journal.
 */
import { readFileSync } from 'node:fs';
import { autoDetect } from '@serialport/bindings-cpp';
import { SimBankPort } from '../acquirer/sim-bank';
import { SimRule, SimScript } from './ecr-simulator';
import { runSimulatorOnPort } from './sim-port';
import { arg, exitOnSignals, serveControl } from '../shared/sim-control';

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
  if (control)
    await serveControl('sim-terminal', control, async (method, url, body) => {
      if (method === 'POST' && url === '/rules') {
        const b = await body();
        const rules = (Array.isArray(b) ? b : [b]) as SimRule[];
        for (const r of rules) simulator.expect(r);
        return [200, { queued: rules.length }];
      }
      if (method === 'PUT' && url === '/script') {
        simulator.setScript((await body()) as SimScript);
        return [200, { ok: true }];
      }
      if (method === 'GET' && url === '/journal') return [200, [...simulator.journal.values()]];
      if (method === 'GET' && url === '/healthz') return [200, { ok: true }];
      return undefined;
    });
  exitOnSignals(() => sim.close());
}
