/**
 * Serial devices per lane from the environment (POS_TERMINALS, POS_PRINTERS): `LANE:PATH[@BAUD]` or
 * `LANE:sim`, comma separated, one device of the kind per lane.
 */
export type LaneDevice =
  { kind: 'sim'; lane: string } | { kind: 'device'; lane: string; path: string; baudRate: number };

const BAUDS = new Set([1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]);

export function parseLaneDevices(variable: string, value: string): LaneDevice[] {
  const specs: LaneDevice[] = [];
  const seen = new Set<string>();
  for (const raw of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]{1,32}):(.+)$/.exec(raw);
    if (!m) throw new Error(`${variable}: "${raw}" is not LANE:PATH[@BAUD] or LANE:sim`);
    const [, lane, target] = m;
    if (seen.has(lane)) throw new Error(`${variable}: lane ${lane} is listed twice`);
    seen.add(lane);
    if (target === 'sim') {
      specs.push({ kind: 'sim', lane });
      continue;
    }
    const at = /^(.+?)(?:@(\d+))?$/.exec(target)!;
    const baudRate = at[2] ? Number(at[2]) : 9600;
    if (!BAUDS.has(baudRate)) throw new Error(`${variable}: lane ${lane}: unsupported baud rate ${at[2]}`);
    specs.push({ kind: 'device', lane, path: at[1], baudRate });
  }
  return specs;
}
