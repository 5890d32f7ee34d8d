/** POS_TERMINALS: `LANE:PATH[@BAUD]` or `LANE:sim`, comma separated. */
import { autoDetect } from '@serialport/bindings-cpp';
import { Logger } from '../shared/logger';
import { SerialTerminal } from './serial-terminal';
import { LaneDevice, parseLaneDevices } from '../shared/lane-devices';

export type LaneSpec = LaneDevice;

export function parseTerminalsEnv(value: string): LaneSpec[] {
  return parseLaneDevices('POS_TERMINALS', value);
}

/** A lane on a real serial device (or pty), through the OS binding. */
export function openTerminal(
  spec: Extract<LaneSpec, { kind: 'device' }>,
  opts: { tRespMs: number; log?: Logger },
): Promise<SerialTerminal> {
  return new SerialTerminal(spec.lane, {
    binding: autoDetect(),
    path: spec.path,
    baudRate: spec.baudRate,
    tRespMs: opts.tRespMs,
    log: opts.log,
  }).start();
}
