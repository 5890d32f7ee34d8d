/** POS_TERMINALS: `LANE:PATH[@BAUD]` or `LANE:sim`, comma separated. */
import { autoDetect } from '@serialport/bindings-cpp';
import { Logger } from '../shared/logger';
import { SerialTerminal } from './serial-terminal';

export type LaneSpec = { kind: 'sim'; lane: string } | { kind: 'device'; lane: string; path: string; baudRate: number };

const BAUDS = new Set([1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]);

export function parseTerminalsEnv(value: string): LaneSpec[] {
  const specs: LaneSpec[] = [];
  const seen = new Set<string>();
  for (const raw of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]{1,32}):(.+)$/.exec(raw);
    if (!m) throw new Error(`POS_TERMINALS: "${raw}" is not LANE:PATH[@BAUD] or LANE:sim`);
    const [, lane, target] = m;
    if (seen.has(lane)) throw new Error(`POS_TERMINALS: lane ${lane} is listed twice`);
    seen.add(lane);
    if (target === 'sim') {
      specs.push({ kind: 'sim', lane });
      continue;
    }
    const at = /^(.+?)(?:@(\d+))?$/.exec(target)!;
    const baudRate = at[2] ? Number(at[2]) : 9600;
    if (!BAUDS.has(baudRate)) throw new Error(`POS_TERMINALS: lane ${lane}: unsupported baud rate ${at[2]}`);
    specs.push({ kind: 'device', lane, path: at[1], baudRate });
  }
  return specs;
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
