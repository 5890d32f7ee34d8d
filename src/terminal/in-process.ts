/**
 * `POS_TERMINALS=lane-1:sim`: the real driver and the real simulator joined by an in-memory
 * null-modem cable, so the embedded default runs the same framing, link and RC handling as a lane
 * with a device on a serial port.
 */
import { SimBankPort } from '../acquirer/sim-bank';
import { Logger } from '../shared/logger';
import { NullModemBinding } from './null-modem';
import { SimScript, TerminalSimulator } from './ecr-simulator';
import { runSimulatorOnPort } from './sim-port';
import { SerialTerminal } from './serial-terminal';

export interface SimulatedTerminal {
  terminal: SerialTerminal;
  simulator: TerminalSimulator;
  close(): Promise<void>;
}

export async function createSimulatedTerminal(
  lane: string,
  opts: {
    bank?: SimBankPort;
    tRespMs: number;
    tAckMs?: number;
    script?: SimScript;
    log?: Logger;
    now?: () => Date;
  },
): Promise<SimulatedTerminal> {
  const binding = new NullModemBinding();
  const ecrEnd = `${lane}/ecr`;
  const posEnd = `${lane}/pos`;
  binding.pair(ecrEnd, posEnd);
  const sim = await runSimulatorOnPort(binding, posEnd, {
    bank: opts.bank,
    script: opts.script,
    now: opts.now,
    reopenAfterMs: 200,
  });
  const terminal = await new SerialTerminal(lane, {
    binding,
    path: ecrEnd,
    tRespMs: opts.tRespMs,
    tAckMs: opts.tAckMs,
    reconnectMs: 250,
    log: opts.log,
  }).start();
  return {
    terminal,
    simulator: sim.simulator,
    close: async () => {
      await terminal.close();
      await sim.close();
    },
  };
}
