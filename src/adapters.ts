/**
 * Builds the adapters `pos serve` runs with, from the environment: the lanes' terminals
 * (POS_TERMINALS: serial devices, or `sim` for the built-in simulated terminal) and the acquirer
 * gateway (ACQUIRER_URL, or — when it is unset — the built-in acquirer simulator, which shares one
 * simulated bank with the simulated terminals so its answers match what they did).
 * `ACQUIRER_URL=none` runs without an acquirer (the sweeper then asks the terminals only).
 */
import { Config } from './config';
import { Logger } from './shared/logger';
import { systemClock } from './shared/clock';
import { Terminal } from './terminal/terminal';
import { Acquirer } from './acquirer/acquirer';
import { SimBankPort } from './acquirer/sim-bank';

export interface Adapters {
  terminals: Map<string, Terminal>;
  acquirer: Acquirer | null;
  acquirerDescription: string;
  close(): Promise<void>;
}

export async function buildAdapters(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Adapters> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => { for (const c of closers.reverse()) await c().catch(() => undefined); };
  try {
    const { parseTerminalsEnv } = await import('./terminal/lanes');
    const specs = parseTerminalsEnv(config.terminals);
    const needsSimBank = specs.some((s) => s.kind === 'sim');

    let bank: SimBankPort | undefined;
    let acquirer: Acquirer | null = null;
    let acquirerDescription = 'none';
    if (config.acquirerUrl === 'none') {
      acquirerDescription = 'none (ACQUIRER_URL=none)';
    } else if (config.acquirerUrl) {
      const { acquirerFromEnv } = await import('./acquirer/acquirer-env');
      acquirer = acquirerFromEnv(env, systemClock);
      acquirerDescription = config.acquirerUrl;
    } else {
      const { MemorySimBank } = await import('./acquirer/bank-memory');
      const { embeddedAcquirer } = await import('./acquirer/acquirer-env');
      bank = new MemorySimBank();
      const embedded = await embeddedAcquirer(bank);
      closers.push(() => embedded.close());
      acquirer = embedded.acquirer;
      acquirerDescription = `built-in simulator at ${embedded.url}`;
    }
    if (needsSimBank && !bank) {
      // Simulated lanes against a real acquirer: the simulator still needs somewhere to record what it "charged".
      const { MemorySimBank } = await import('./acquirer/bank-memory');
      bank = new MemorySimBank();
    }

    const terminals = new Map<string, Terminal>();
    for (const spec of specs) {
      if (spec.kind === 'sim') {
        const { createSimulatedTerminal } = await import('./terminal/in-process');
        const sim = await createSimulatedTerminal(spec.lane, { bank, tRespMs: config.terminalTRespMs, log });
        closers.push(() => sim.close());
        terminals.set(spec.lane, sim.terminal);
      } else {
        const { openTerminal } = await import('./terminal/lanes');
        const t = await openTerminal(spec, { tRespMs: config.terminalTRespMs, log });
        closers.push(() => t.close());
        terminals.set(spec.lane, t);
      }
    }
    return { terminals, acquirer, acquirerDescription, close };
  } catch (err) {
    await close();
    throw err;
  }
}
