import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NullModemBinding } from '../terminal/null-modem';
import { SerialPrinter } from './serial-printer';
import { runPrinterSimOnPort } from './printer-simulator';
import { parsePrintersEnv } from './lanes';

describe('serial printer status (DLE EOT)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pos-printer-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is away when nothing answers on the line, and printing fails rather than hangs when the port is missing', async () => {
    const binding = new NullModemBinding();
    binding.pair('host', 'device'); // nobody opens the device end
    const silent = await new SerialPrinter('lane-1', { binding, path: 'host', tStatusMs: 100 }).start();
    expect(await silent.status()).toEqual({ state: 'away', paperNearEnd: false });
    await silent.close();

    const missing = await new SerialPrinter('lane-1', {
      binding,
      path: 'nowhere',
      tStatusMs: 100,
      reconnectMs: 60_000,
    }).start();
    expect(await missing.status()).toEqual({ state: 'away', paperNearEnd: false });
    await expect(missing.print(Buffer.from('x'))).rejects.toThrow(/not connected/);
    await missing.close();
  });

  it('reads ready and paper out from the printer', async () => {
    const binding = new NullModemBinding();
    binding.pair('host', 'device');
    const sim = await runPrinterSimOnPort(binding, 'device', dir);
    const p = await new SerialPrinter('lane-1', { binding, path: 'host', tStatusMs: 300 }).start();
    expect(await p.status()).toEqual({ state: 'ready', paperNearEnd: false });
    sim.simulator.paperOut = true;
    expect(await p.status()).toEqual({ state: 'paper_out', paperNearEnd: false });
    await p.close();
    await sim.close();
  });
});

describe('POS_PRINTERS', () => {
  it('parses devices with a baud rate and simulated lanes', () => {
    expect(parsePrintersEnv('lane-1:/dev/ttyUSB1@9600, lane-2:sim')).toEqual([
      { kind: 'device', lane: 'lane-1', path: '/dev/ttyUSB1', baudRate: 9600 },
      { kind: 'sim', lane: 'lane-2' },
    ]);
    expect(parsePrintersEnv('')).toEqual([]);
  });
  it('refuses a lane twice, an odd baud rate, or no lane', () => {
    expect(() => parsePrintersEnv('a:sim,a:sim')).toThrow(/twice/);
    expect(() => parsePrintersEnv('a:/dev/x@1234')).toThrow(/baud/);
    expect(() => parsePrintersEnv('/dev/ttyUSB1')).toThrow(/LANE:PATH/);
  });
});
