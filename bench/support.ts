/**
 * What every benchmark needs: a fresh MariaDB schema, the compiled service in a child process (so
 * the load generator and the server do not share one event loop), an HTTP client, autocannon as a
 * promise, `pos check`, and peak-memory readings.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import autocannon from 'autocannon';
import { Db } from '../src/db/db';

/** The repository root, whether this runs compiled (dist/bench) or from source (bench/). */
function findRoot(dir: string): string {
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error('package.json not found above ' + __dirname);
    dir = dirname(dir);
  }
  return dir;
}
export const root = findRoot(__dirname);
/**
 * The service the benches start. BENCH_CLI=<path to another build's dist/src/cli.js> runs that build
 * instead, so two versions can be measured in alternation in the same minutes (the machine's speed
 * moves by up to two times from one minute to the next).
 */
const cli = process.env.BENCH_CLI || join(root, 'dist', 'src', 'cli.js');
export const benchBaseUrl = () => process.env.BENCH_DATABASE_URL || 'mysql://root@127.0.0.1:3306/test';

export async function benchDb(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(benchBaseUrl());
  const name = `pos_${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = await Db.fromUrl(base.toString(), { poolSize: 1 }).open();
  await admin.ds.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
  await admin.close();
  base.pathname = `/${name}`;
  const url = base.toString();
  const db = await Db.fromUrl(url, { poolSize: 1 }).open({ migrate: true });
  await db.close();
  return {
    url,
    drop: async () => {
      if (process.env.BENCH_KEEP_DB) return;
      const a = await Db.fromUrl(benchBaseUrl(), { poolSize: 1 }).open();
      await a.ds.query(`DROP DATABASE IF EXISTS ${name}`);
      await a.close();
    },
  };
}

/** Peak resident set of a process in MB (VmHWM), or 0 where /proc is not there. */
export function peakRssMb(pid: number | 'self' = 'self'): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}
export const ownPeakRssMb = () => peakRssMb('self');

/** The fields of /proc/PID/stat after the command name (state is [0], ppid [1]), or null (gone, or not Linux). */
function procStat(pid: number | 'self'): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  } catch {
    return null;
  }
}

/** The pids of the processes running now (Linux /proc; empty elsewhere). */
function processIds(): number[] {
  try {
    return readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number);
  } catch {
    return []; // not Linux
  }
}

/** User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere). */
export function cpuSeconds(pid: number | 'self'): number {
  const f = procStat(pid);
  return f ? (Number(f[11]) + Number(f[12])) / 100 : 0;
}

/** CPU seconds of a process and its children (the workers of `serve --workers N`); Linux only, else 0. */
export function treeCpuSeconds(pid: number): number {
  const children = processIds().filter((p) => Number(procStat(p)?.[1]) === pid);
  return [pid, ...children].reduce((sum, p) => sum + cpuSeconds(p), 0);
}

/** The pid of a database server running on this machine (mariadbd or mysqld), or null (remote, or no /proc). */
export function localDatabasePid(): number | null {
  for (const p of processIds()) {
    try {
      const comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      if (comm === 'mariadbd' || comm === 'mysqld') return p;
    } catch {
      /* gone meanwhile */
    }
  }
  return null;
}

export interface BenchServer {
  url: string;
  adminKey: string;
  pid: number;
  peakRssMb(): number;
  stop(): Promise<void>;
}

export async function startServer(opts: {
  databaseUrl: string;
  env?: Record<string, string>;
  workers?: number;
}): Promise<BenchServer> {
  const adminKey = `pos_bench_${randomBytes(16).toString('hex')}`;
  // BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server (NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, cli, 'serve', ...(opts.workers && opts.workers > 1 ? ['--workers', String(opts.workers)] : [])],
    {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: opts.databaseUrl,
        POS_ADMIN_KEY: adminKey,
        PORT: '0',
        HOST: '127.0.0.1',
        POS_TERMINALS: '',
        // No receipt printer unless asked (BENCH_PRINTERS=lane-1:sim): an on-sale's phones print nothing, and a
        // simulated printer on the one lane every connection uses would print 1 000+ receipts a second, which
        // no printer does. bench:reserve measures the lane with its printer on a line of its own.
        POS_PRINTERS: process.env.BENCH_PRINTERS ?? '',
        POS_LOG: 'silent',
        SWEEP_CRON: '0 0 1 1 *',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
  return {
    url,
    adminKey,
    pid: child.pid!,
    peakRssMb: () => peakRssMb(child.pid!),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export type BenchApi = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<{ status: number; body: any }>;

export function api(url: string, key: string): BenchApi {
  return async (method, path, body, headers = {}) => {
    const h: Record<string, string> = { authorization: `Bearer ${key}`, ...headers };
    let payload: string | undefined;
    if (typeof body === 'string') payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + path, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* keep text */
    }
    return { status: res.status, body: parsed };
  };
}

export function cannon(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

export async function posCheck(databaseUrl: string): Promise<{ clean: boolean; output: string }> {
  const r = spawnSync(process.execPath, [cli, 'check'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    encoding: 'utf8',
  });
  return { clean: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

/**
 * Mean batch size per batch kind, summed over the server's processes: /metrics is scraped over fresh
 * connections until every worker (told apart by pos_process_info's pid) has answered.
 */
export async function batchStats(
  url: string,
  processes: number,
): Promise<Map<string, { batches: number; requests: number; fallbacks: number }>> {
  const http = await import('node:http');
  const seen = new Map<string, string>();
  for (let i = 0; i < processes * 10 && seen.size < processes; i++) {
    const text = await new Promise<string>((resolve, reject) => {
      http
        .get(`${url}/metrics`, { agent: false }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    const pids = [...text.matchAll(/pos_process_info\{pid="(\d+)"\}/g)].map((m) => m[1]);
    if (pids.length > 1) {
      // `serve --workers N` answers one scrape for the whole cluster (prom-client's aggregation): that one is all.
      seen.clear();
      seen.set(pids.join(','), text);
      break;
    }
    if (pids[0]) seen.set(pids[0], text);
  }
  const out = new Map<string, { batches: number; requests: number; fallbacks: number }>();
  for (const text of seen.values()) {
    for (const m of text.matchAll(/^pos_batch_size_(sum|count)\{batch="(\w+)"\} (\S+)$/gm)) {
      const s = out.get(m[2]) ?? { batches: 0, requests: 0, fallbacks: 0 };
      if (m[1] === 'sum') s.requests += Number(m[3]);
      else s.batches += Number(m[3]);
      out.set(m[2], s);
    }
    for (const m of text.matchAll(/^pos_batch_fallbacks_total\{batch="(\w+)"\} (\S+)$/gm)) {
      const s = out.get(m[1]) ?? { batches: 0, requests: 0, fallbacks: 0 };
      s.fallbacks += Number(m[2]);
      out.set(m[1], s);
    }
  }
  return out;
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * The service's process figures between two scrapes of /metrics (prom-client's process metrics):
 * GC pause seconds by kind (the sums are cumulative, so the difference), and the event loop's delay
 * p99 and max over the span (prom-client resets that histogram at each scrape). Take `before` right
 * before the measured load. With `serve --workers N` the scrape is the cluster's, merged.
 */
export async function scrapeMetrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

export function processFigures(before: string, after: string, seconds: number): string {
  const gc = (text: string) => {
    const out = new Map<string, number>();
    for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{kind="(\w+)"[^}]*\} (\S+)$/gm))
      out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]));
    return out;
  };
  const g0 = gc(before);
  const g1 = gc(after);
  if (g1.size === 0) return 'process metrics: none on /metrics';
  const kinds = [...g1].map(([k, v]) => [k, v - (g0.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
  const total = kinds.reduce((a, [, v]) => a + v, 0);
  const lag = (name: string) =>
    Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(after)?.[1] ?? NaN);
  return (
    `GC ${(1000 * total).toFixed(0)} ms over the run (${((100 * total) / seconds).toFixed(1)} % of it; ${kinds.map(([k, v]) => `${k} ${(1000 * v).toFixed(0)}`).join(', ')}); ` +
    `event-loop delay p99 ${(1000 * lag('p99')).toFixed(1)} ms, max ${(1000 * lag('max')).toFixed(1)} ms`
  );
}

/** The nearest-rank percentile (`p` from 0 to 1; 1 is the max) of some latencies, in any order; 0 for none. */
export function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] : 0;
}
