/**
 * Where a process allocates, garbage included: what the GC's share of a bench's CPU is made of.
 *
 * - As a preload, `BENCH_SERVER_NODE_ARGS="--require ./dist/bench/alloc-profile.js"` (with
 *   `BENCH_ALLOC_PROFILE=FILE`, default `alloc.heapprofile` in the working directory): the service
 *   samples its allocations from start to SIGTERM (V8's sampling heap profiler, every 4 KiB on average,
 *   objects the GC has already collected kept in the profile) and writes the profile when told to stop.
 * - `node dist/bench/alloc-profile.js FILE [N]`: the profile summed by package or file and by function
 *   (the function that allocated, N rows, default 40), as shares of all sampled bytes.
 *
 * Hand-written: node's `--heap-prof` keeps only what is still alive when the profile is written, which
 * leaves out exactly the short-lived garbage that keeps the scavenger busy; the inspector's sampling
 * profiler has the flags for it but no command-line switch.
 */
import { Session } from 'node:inspector';
import { readFileSync, writeFileSync } from 'node:fs';

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children?: Node[];
}

function record(file: string): void {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  // Before the service's own SIGTERM handler, which closes the server and exits.
  process.prependOnceListener('SIGTERM', () => {
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (!err) writeFileSync(file, JSON.stringify((res as { profile: unknown }).profile));
    });
  });
}

function summarise(file: string, rows: number): void {
  const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: Node }).head;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const walk = (n: Node): void => {
    const { functionName, url, lineNumber } = n.callFrame;
    const nm = url.lastIndexOf('/node_modules/');
    const where = nm >= 0 ? `nm/${url.slice(nm + 14)}` : url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
    const pkg = nm >= 0 ? `nm/${where.slice(3).split('/')[where.startsWith('nm/@') ? 1 : 0]}` : where;
    add(byFunction, `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`, n.selfSize);
    add(byPackage, pkg || '(native)', n.selfSize);
    for (const c of n.children ?? []) walk(c);
  };
  walk(head);
  const total = [...byFunction.values()].reduce((a, b) => a + b, 0);
  const print = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .forEach(([k, v]) => console.log(`${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`));
  console.log(`${(total / 1e6).toFixed(0)} MB sampled`);
  console.log('--- by package or file');
  print(byPackage, 25);
  console.log('--- by function (the one that allocated)');
  print(byFunction, rows);
}

if (require.main === module) {
  const [file, rows] = process.argv.slice(2);
  if (!file) throw new Error('usage: node dist/bench/alloc-profile.js FILE.heapprofile [N]');
  summarise(file, Number(rows || 40));
} else {
  record(process.env.BENCH_ALLOC_PROFILE || 'alloc.heapprofile');
}
