/**
 * `node dist/bench/prof-summary.js FILE.cpuprofile [N]`: where a `--cpu-prof` profile's samples fell,
 * as shares of the whole: by package or file, then by function (self time, N rows, default 40).
 * The benches' profiles come from `BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"` (the
 * service, and bench:sweep's simulator) or `node --cpu-prof dist/bench/sweep.js` (the sweeper).
 * Hand-written: Chrome's DevTools reads the file but gives no text summary to paste into a note.
 * On a machine whose cores are all busy the sampler also counts time a thread waited for a core, so
 * a function that wakes another process or thread (a socket write, a job for the thread pool) looks
 * dearer than it is.
 */
import { readFileSync } from 'node:fs';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

function main(): void {
  const [file, rows] = process.argv.slice(2);
  if (!file) throw new Error('usage: node dist/bench/prof-summary.js FILE.cpuprofile [N]');
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfTime = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
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
  console.log(`${(total / 1e6).toFixed(1)} s sampled`);
  console.log('--- by package or file');
  print(byPackage, 25);
  console.log('--- by function (self time)');
  print(byFunction, Number(rows ?? 40));
}

main();
