/**
 * Builds the adapters `pos serve` runs with, from the environment: the lanes' terminals
 * (POS_TERMINALS: serial devices, or `sim` for the built-in simulated terminal) and the acquirer
 * gateway (ACQUIRER_URL, or — when it is unset and every lane is `sim` — the built-in acquirer
 * simulator, which shares one simulated bank with the simulated terminals so its answers match what
 * they did; its `/sim/*` routes exist only then). A device lane with no ACQUIRER_URL refuses to start.
 * `ACQUIRER_URL=none` runs without an acquirer (the sweeper then asks the terminals only).
 */
import { Config, ConfigError } from './config';
import { Logger } from './shared/logger';
import { systemClock } from './shared/clock';
import { Terminal } from './terminal/terminal';
import { Acquirer } from './acquirer/acquirer';
import { readFileSync } from 'node:fs';
import { SimBankPort } from './acquirer/sim-bank';
import { MemorySimBank } from './acquirer/bank-memory';
import { HttpSimBank } from './acquirer/bank-http';
import { acquirerFromEnv, embeddedAcquirer } from './acquirer/acquirer-env';
import { SimScript } from './terminal/ecr-simulator';
import { createSimulatedTerminal } from './terminal/in-process';
import { openTerminal, parseTerminalsEnv } from './terminal/lanes';
import { Printer } from './printer/printer';
import { openPrinters } from './printer/lanes';

/**
 * What the built-in simulated terminal does unless POS_SIM_SCRIPT names a script file: approve with
 * the usual prompts, except for a few amounts a trainer (or the README) can use to see the other paths.
 */
export const DEMO_SCRIPT: SimScript = {
  otherwise: { action: 'approve', prompts: ['请插卡或挥卡', '请输入密码'], delayMs: 300 },
  byAmount: {
    '5100': { action: 'decline', rc: '51' }, // ¥51.00: insufficient funds
    '9800': { action: '98' }, // ¥98.00: bank did not answer; the terminal reverses it later
    '4400': { action: 'silence', bank: 'approved' }, // ¥44.00: no final response; the bank did charge
  },
};

export interface Adapters {
  terminals: Map<string, Terminal>;
  acquirer: Acquirer | null;
  acquirerDescription: string;
  /** Receipt printers by lane (POS_PRINTERS, default `lane-1:sim` writing under POS_RECEIPTS_DIR or ./data/receipts). */
  printers: Map<string, Printer>;
  printerDescriptions: string[];
  close(): Promise<void>;
}

export async function buildAdapters(
  config: Config,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Adapters> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const specs = parseTerminalsEnv(config.terminals);
    const needsSimBank = specs.some((s) => s.kind === 'sim');
    const devices = specs.filter((s) => s.kind === 'device').map((s) => s.lane);
    if (devices.length && !config.acquirerUrl) {
      // The built-in simulator knows only what the simulated terminals told it: for a real card it would answer
      // "no such transaction" at best, and a store must not settle real money against a make-believe bank.
      throw new ConfigError(
        `lane(s) ${devices.join(', ')} drive real terminals, so the built-in acquirer simulator will not be used: ` +
          'set ACQUIRER_URL to the acquirer gateway, or ACQUIRER_URL=none to resolve unknown payments from the terminals only (then suspense)',
      );
    }

    let bank: SimBankPort | undefined;
    let acquirer: Acquirer | null = null;
    let acquirerDescription = 'none';
    if (config.acquirerUrl === 'none') {
      acquirerDescription = 'none (ACQUIRER_URL=none)';
    } else if (config.acquirerUrl) {
      const http = acquirerFromEnv(env, systemClock, log);
      closers.push(() => http.close());
      acquirer = http;
      acquirerDescription = config.acquirerUrl;
    } else {
      bank = new MemorySimBank();
      const embedded = await embeddedAcquirer(bank, { log });
      closers.push(() => embedded.close());
      acquirer = embedded.acquirer;
      acquirerDescription = `built-in simulator at ${embedded.url}`;
    }
    if (needsSimBank && !bank) {
      // Simulated lanes against another acquirer: the simulator still needs somewhere to record what it "charged".
      // POS_SIM_BANK_URL names an acquirer simulator whose bank outlives this process (the crash harness kills
      // the service and expects the bank to remember); otherwise a bank in memory.
      bank = env.POS_SIM_BANK_URL ? new HttpSimBank(env.POS_SIM_BANK_URL) : new MemorySimBank();
    }

    const terminals = new Map<string, Terminal>();
    for (const spec of specs) {
      if (spec.kind === 'sim') {
        const script: SimScript = env.POS_SIM_SCRIPT
          ? JSON.parse(readFileSync(env.POS_SIM_SCRIPT, 'utf8'))
          : DEMO_SCRIPT;
        const sim = await createSimulatedTerminal(spec.lane, { bank, tRespMs: config.terminalTRespMs, log, script });
        closers.push(() => sim.close());
        terminals.set(spec.lane, sim.terminal);
      } else {
        const t = await openTerminal(spec, { tRespMs: config.terminalTRespMs, log });
        closers.push(() => t.close());
        terminals.set(spec.lane, t);
      }
    }
    const printing = await openPrinters(
      env.POS_PRINTERS ?? 'lane-1:sim',
      env.POS_RECEIPTS_DIR || './data/receipts',
      log,
    );
    closers.push(() => printing.close());
    return {
      terminals,
      acquirer,
      acquirerDescription,
      printers: printing.printers,
      printerDescriptions: printing.descriptions,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
