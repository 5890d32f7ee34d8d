/**
 * `node dist/bench/prof-summary.js FILE.cpuprofile [N] [FUNCTION]`: where a `--cpu-prof` profile's samples
 * fell, as shares of the whole (or, with FUNCTION, of the stretch from the first sample with that function on
 * its stack to the last): by package or file, then by function (self time, N rows, default 40).
 * The benches' profiles come from `BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"` (the
 * service, and bench:sweep's simulator) or `node --cpu-prof dist/bench/sweep.js` (the sweeper).
 * Hand-written: Chrome's DevTools reads the file but gives no text summary to paste into a note.
 * On a machine whose cores are all busy the sampler also counts time a thread waited for a core, so
 * a function that wakes another process or thread (a socket write, a job for the thread pool) looks
 * dearer than it is.
 */
import { readFileSync } from 'node:fs';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

function main(): void {
  const [file, rows, during] = process.argv.slice(2);
  if (!file) throw new Error('usage: node dist/bench/prof-summary.js FILE.cpuprofile [N] [FUNCTION]');
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // With FUNCTION, only the samples from the first to the last whose stack holds a frame of that name (a
  // bench's measured load, say `holdSeats`, without the set-up before it and the shutdown after it).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const holds = new Map<number, boolean>();
  const inside = (id: number): boolean => {
    let v = holds.get(id);
    if (v === undefined) {
      const up = parent.get(id);
      v = byId.get(id)!.callFrame.functionName === during || (up !== undefined && inside(up));
      holds.set(id, v);
    }
    return v;
  };
  let first = 0;
  let last = p.samples.length - 1;
  if (during) {
    first = p.samples.findIndex(inside);
    if (first < 0) throw new Error(`no sample has ${during} on its stack`);
    while (!inside(p.samples[last])) last--;
  }
  const selfTime = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    if (i < first || i > last) return;
    const dt = p.timeDeltas[i] ?? 0;
    selfTime.set(id, (selfTime.get(id) ?? 0) + dt);
    total += dt;
  });
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, t: number) => m.set(k, (m.get(k) ?? 0) + t);
  for (const [id, t] of selfTime) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const file = url.replace(/^.*node_modules\//, 'nm/').replace(/^file:\/\/.*\/dist\//, 'dist/');
    add(byFunction, `${functionName || '(anonymous)'} ${file}:${lineNumber}`, t);
    const parts = file.split('/');
    const pkg = file.startsWith('nm/') ? parts.slice(0, parts[1]?.startsWith('@') ? 3 : 2).join('/') : file;
    add(byPackage, pkg || functionName, t);
  }
  const print = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .forEach(([k, t]) => console.log(`${((100 * t) / total).toFixed(1).padStart(5)} %  ${k}`));
  console.log(
    `${(total / 1e6).toFixed(1)} s sampled${during ? ` (from the first sample with ${during} on its stack to the last)` : ''}`,
  );
  console.log('--- by package or file');
  print(byPackage, 25);
  console.log('--- by function (self time)');
  print(byFunction, Number(rows ?? 40));
}

main();
