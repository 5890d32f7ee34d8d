/**
 * `npm run bench:reserve`: checkouts on one hot SKU through the service in child processes, with
 * autocannon at 64 connections (BENCH_CONNECTIONS) for 10 s per run (BENCH_SECONDS):
 *
 *  1. MariaDB, one process: orders (reserve) alone and a bare express handler in its own process, the
 *     yardstick, measured in turns (orders, bare, bare, orders) so that both see the same machine; then
 *     orders each with an Idempotency-Key, checkouts (order + cash), and the bare handler served as the
 *     service serves its app; each with the server's CPU per request; the ratios; the mean batch size;
 *  2. MariaDB, `serve --workers 2` and `--workers 3`: checkouts on the same hot SKU;
 *  3. MariaDB, one process, a 1 000-SKU spread (each request picks a random SKU);
 *  4. SQLite (one writer), one process: orders and checkouts;
 *  5. (BENCH_ONLY=galera, with GALERA_URLS from `scripts/galera.sh start`) one process per Galera node,
 *     the connections split over the three, checkouts on the same hot SKU.
 *
 * Every run ends with `pos check` on its database. BENCH_ONLY=hot,workers,spread,sqlite picks runs;
 * POS_BATCH=off measures the one-order-per-transaction path for comparison.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import {
  api,
  batchStats,
  benchDb,
  cannon,
  fmt,
  percentile,
  posCheck,
  startServer,
  treeCpuSeconds,
  BenchServer,
} from './support';

const seconds = Number(process.env.BENCH_SECONDS || 10);
const connections = Number(process.env.BENCH_CONNECTIONS || 64);
const only = new Set((process.env.BENCH_ONLY || 'hot,workers,spread,sqlite').split(','));
let failed = false;

/** What a line prints: one autocannon run, or several slices of one measure merged (`merged`). */
interface Figures {
  rate: number;
  p50: number;
  p99: number;
  total: number;
  errors: number;
}

const fromResult = (r: autocannon.Result, perOp: number): Figures => ({
  rate: r.requests.average / perOp,
  p50: r.latency.p50,
  p99: r.latency.p99,
  total: r.requests.total,
  errors: r.non2xx + r.errors + r.timeouts,
});

/** A run's figures; with `cpu` (the server's CPU seconds over the run), its CPU per request. */
function line(label: string, run: autocannon.Result | Figures, perOp = 1, cpu?: number): { rate: number } {
  const f = 'requests' in run ? fromResult(run, perOp) : run;
  const perRequest = cpu !== undefined && f.total ? `   server CPU ${fmt((cpu * 1000) / f.total, 3)} ms/request` : '';
  console.log(
    `${label.padEnd(34)} ${fmt(f.rate).padStart(7)}/s   p50 ${fmt(f.p50, 1)} ms   p99 ${fmt(f.p99, 1)} ms   requests ${fmt(f.total)}   non-2xx/errors ${f.errors}${perRequest}`,
  );
  if (f.errors > 0) failed = true;
  return { rate: f.rate };
}

/** One slice of a measure: its autocannon result and each answer's latency (ms, from its request being made). */
interface Slice {
  result: autocannon.Result;
  latencies: number[];
}

/** Autocannon's options with each request timed; `opts.requests` (or one request from method/path/body) kept. */
function timed(opts: autocannon.Options): Promise<Slice> {
  const latencies: number[] = [];
  const given = (opts as { requests?: any[] }).requests;
  const requests = (given ?? [{ method: opts.method, body: opts.body }]).map((r: any, i: number) => ({
    ...r,
    setupRequest: (req: any, context: Record<string, unknown>) => {
      if (i === 0) context.sent = performance.now();
      return r.setupRequest ? r.setupRequest(req, context) : req;
    },
    onResponse: (status: number, body: string, context: Record<string, unknown>, headers: unknown) => {
      r.onResponse?.(status, body, context, headers);
      if (i === (given?.length ?? 1) - 1) latencies.push(performance.now() - (context.sent as number));
    },
  }));
  return cannon({ ...opts, requests } as autocannon.Options).then((result) => ({ result, latencies }));
}

/** Slices of one measure as one line's figures: requests over the slices' time, percentiles over every answer. */
function merged(slices: Slice[]): Figures {
  const all = slices.flatMap((s) => s.latencies);
  const total = slices.reduce((n, s) => n + s.result.requests.total, 0);
  const duration = slices.reduce((n, s) => n + s.result.duration, 0);
  return {
    rate: total / duration,
    p50: Math.round(percentile(all, 0.5)),
    p99: Math.round(percentile(all, 0.99)),
    total,
    errors: slices.reduce((n, s) => n + s.result.non2xx + s.result.errors + s.result.timeouts, 0),
  };
}

/** The server's CPU seconds (its workers' too) over `run`. */
async function withCpu<T>(pid: number, run: () => Promise<T>): Promise<[T, number]> {
  const before = treeCpuSeconds(pid);
  const r = await run();
  return [r, treeCpuSeconds(pid) - before];
}

/** bench/bare-server in its own process, listening (as it comes, or `served` as the service serves its app). */
async function startBare(served = false): Promise<{ url: string; pid: number; stop(): void }> {
  const child = spawn(process.execPath, [join(__dirname, 'bare-server.js'), ...(served ? ['served'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /listening on (\S+)/.exec(d.toString());
      if (m) resolve(m[1]);
    });
  });
  return { url, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

function bareRun(url: string, duration = seconds): Promise<Slice> {
  return timed({
    url: `${url}/v1/orders`,
    method: 'POST',
    connections,
    duration,
    headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
    body: JSON.stringify({ lane: 'lane-1', lines: [{ sku: 'HOT', qty: 1 }] }),
  });
}

async function bare(served = false): Promise<[autocannon.Result, number]> {
  const b = await startBare(served);
  try {
    const [slice, cpu] = await withCpu(b.pid, () => bareRun(b.url));
    return [slice.result, cpu];
  } finally {
    b.stop();
  }
}

type Must = (r: Promise<{ status: number; body: any }>, what: string) => Promise<any>;
const must: Must = async (r, what) => {
  const res = await r;
  if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
};

/** SKUs with plenty of stock and a cashier key. */
async function stockUp(server: BenchServer, skus: string[]): Promise<string> {
  const admin = api(server.url, server.adminKey);
  for (let i = 0; i < skus.length; i += 16) {
    await Promise.all(
      skus
        .slice(i, i + 16)
        .map((sku) => must(admin('PUT', `/v1/skus/${sku}`, { name: `Item ${sku}`, priceFen: 350 }), 'create SKU')),
    );
  }
  const per = Math.floor(10_000_000 / skus.length);
  for (let i = 0; i < skus.length; i += 500) {
    await must(
      admin('POST', '/v1/stock/receipts', {
        lines: skus.slice(i, i + 500).map((sku) => ({ sku, qty: Math.min(per, 1_000_000) })),
      }),
      'receive stock',
    );
  }
  if (skus.length === 1)
    for (let i = 1; i < 10; i++)
      await must(admin('POST', '/v1/stock/receipts', { lines: [{ sku: skus[0], qty: 1_000_000 }] }), 'receive stock');
  return (await must(admin('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' }), 'cashier key')).key as string;
}

const orderBody = (sku: string) => JSON.stringify({ lane: 'lane-1', lines: [{ sku, qty: 1 }] });
const payBody = JSON.stringify({ method: 'cash', amountFen: 350, lane: 'lane-1' });

/** `keyed`: each order with an Idempotency-Key of its own, as a till or a phone that may retry sends it. */
function ordersRun(url: string, key: string, pick: () => string, keyed = false): Promise<autocannon.Result> {
  return cannon(ordersOptions(url, key, pick, keyed, seconds));
}

/** A slice of the orders measured in turns with the bare handler: each answer timed (`merged`). */
function ordersSlice(url: string, key: string, pick: () => string, duration: number): Promise<Slice> {
  return timed(ordersOptions(url, key, pick, false, duration));
}

function ordersOptions(url: string, key: string, pick: () => string, keyed: boolean, duration: number) {
  return {
    url,
    connections,
    duration,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    requests: [
      {
        method: 'POST',
        path: '/v1/orders',
        setupRequest: (req: any) => ({
          ...req,
          body: orderBody(pick()),
          ...(keyed ? { headers: { ...req.headers, 'idempotency-key': randomUUID() } } : {}),
        }),
      },
    ],
  } as autocannon.Options;
}

function checkoutsRun(url: string, key: string, pick: () => string): Promise<autocannon.Result> {
  return cannon({
    url,
    connections,
    duration: seconds,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    requests: [
      {
        method: 'POST',
        path: '/v1/orders',
        setupRequest: (req: any) => ({ ...req, body: orderBody(pick()) }),
        onResponse: (status: number, body: string, context: Record<string, unknown>) => {
          if (status === 201) context.orderId = JSON.parse(body).id;
        },
      },
      {
        method: 'POST',
        body: payBody,
        setupRequest: (req: any, context: Record<string, unknown>) => ({
          ...req,
          path: `/v1/orders/${context.orderId}/payments`,
        }),
      },
    ],
  } as autocannon.Options);
}

async function batches(server: BenchServer, processes: number): Promise<string> {
  const stats = await batchStats(server.url, processes);
  const parts = [...stats].map(
    ([k, s]) =>
      `${k} ${s.batches ? (s.requests / s.batches).toFixed(1) : '–'} (${fmt(s.batches)} batches${s.fallbacks ? `, ${s.fallbacks} fell back` : ''})`,
  );
  return parts.length ? `mean batch size: ${parts.join('; ')}` : 'mean batch size: batching off';
}

async function finish(server: BenchServer, url: string): Promise<void> {
  await server.stop();
  const check = await posCheck(url);
  console.log(`pos check: ${check.clean ? 'clean' : `BREACHES\n${check.output}`}`);
  if (!check.clean) failed = true;
}

/** Two seconds not counted: the pool's connections opened, the JIT warm, before the first figure. */
async function warmUp(url: string, key: string, pick: () => string = () => 'HOT'): Promise<void> {
  await cannon({
    url,
    connections,
    duration: 2,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    requests: [
      { method: 'POST', path: '/v1/orders', setupRequest: (req: any) => ({ ...req, body: orderBody(pick()) }) },
    ],
  } as autocannon.Options);
}

/** 1: one process, one hot SKU, with the bare handler as the yardstick. */
async function hot(): Promise<void> {
  const db = await benchDb('reserve');
  const server = await startServer({ databaseUrl: db.url });
  try {
    const key = await stockUp(server, ['HOT']);
    console.log(
      `\nbench:reserve — MariaDB ${db.url.replace(/\/\/[^@]*@/, '//')}, one process (pid ${server.pid}), one hot SKU, ${connections} connections, ${seconds} s each`,
    );
    await warmUp(server.url, key);
    const cpu = <T>(run: () => Promise<T>) => withCpu(server.pid, run);
    // The orders and their yardstick, the bare express handler, are measured in turns (orders, bare, bare,
    // orders; each turn half of the run's 10 s), so both see the same machine: a shared machine's speed moves by more
    // than the ratio's margin within a minute (orders 3 508/s one run, 5 931 the run before; the bare
    // handler 6 749 and 6 839). The bare server gets the service's two seconds of warm-up first.
    const yardstick = await startBare();
    let o: { rate: number };
    let b: { rate: number };
    try {
      await bareRun(yardstick.url, 2);
      const orderSlices: Slice[] = [];
      const bareSlices: Slice[] = [];
      let ordersCpu = 0;
      let bareCpu = 0;
      for (const turn of ['orders', 'bare', 'bare', 'orders']) {
        if (turn === 'orders') {
          const [slice, used] = await cpu(() => ordersSlice(server.url, key, () => 'HOT', seconds / 2));
          orderSlices.push(slice);
          ordersCpu += used;
        } else {
          const [slice, used] = await withCpu(yardstick.pid, () => bareRun(yardstick.url, seconds / 2));
          bareSlices.push(slice);
          bareCpu += used;
        }
      }
      o = line('orders (reserve)', merged(orderSlices), 1, ordersCpu);
      b = line('bare express handler', merged(bareSlices), 1, bareCpu);
    } finally {
      yardstick.stop();
    }
    const [keyed, keyedCpu] = await cpu(() => ordersRun(server.url, key, () => 'HOT', true));
    line('orders, each with an Idempotency-Key', keyed, 1, keyedCpu);
    const [checkouts, checkoutsCpu] = await cpu(() => checkoutsRun(server.url, key, () => 'HOT'));
    const c = line('checkouts (order + cash)', checkouts, 2, checkoutsCpu);
    const [servedRun, servedCpu] = await bare(true);
    const s = line('bare handler, served as the service', servedRun, 1, servedCpu);
    console.log(
      `ratio to bare handler: orders ${(o.rate / b.rate).toFixed(3)}, checkouts ${(c.rate / b.rate).toFixed(3)}; ` +
        `to the bare handler served as the service: orders ${(o.rate / s.rate).toFixed(3)}, checkouts ${(c.rate / s.rate).toFixed(3)}`,
    );
    console.log(await batches(server, 1));
    const stock = (await api(server.url, server.adminKey)('GET', '/v1/stock/HOT')).body;
    console.log(
      `stock after: onHand ${stock.onHand}, reserved ${stock.reserved}, available ${stock.available}; server peak RSS ${server.peakRssMb()} MB`,
    );
    await finish(server, db.url);
  } finally {
    await server.stop();
    await db.drop();
  }
  await withPrinter();
}

/** 1b: the same checkouts with the simulated receipt printer on the lane: each sale queues a receipt that prints after its commit. */
async function withPrinter(): Promise<void> {
  const db = await benchDb('reserve');
  const server = await startServer({ databaseUrl: db.url, env: { POS_PRINTERS: 'lane-1:sim' } });
  try {
    const key = await stockUp(server, ['HOT']);
    await warmUp(server.url, key);
    line('checkouts, receipt printer on lane', await checkoutsRun(server.url, key, () => 'HOT'), 2);
    const jobs = (await api(server.url, server.adminKey)('GET', '/v1/printers/lane-1')).body;
    console.log(`receipts still queued at the end: ${jobs?.queued ?? '?'}`);
    await finish(server, db.url);
  } finally {
    await server.stop();
    await db.drop();
  }
}

/** 2: the same hot SKU with 2 and 3 processes on one MariaDB. */
async function workers(): Promise<void> {
  for (const n of [2, 3]) {
    const db = await benchDb('reserve');
    const server = await startServer({ databaseUrl: db.url, workers: n });
    try {
      const key = await stockUp(server, ['HOT']);
      console.log(`\nMariaDB, serve --workers ${n}, one hot SKU`);
      await warmUp(server.url, key);
      line(`checkouts, ${n} processes`, await checkoutsRun(server.url, key, () => 'HOT'), 2);
      console.log(await batches(server, n));
      await finish(server, db.url);
    } finally {
      await server.stop();
      await db.drop();
    }
  }
}

/** 3: 1 000 SKUs, each request a random one. */
async function spread(): Promise<void> {
  const db = await benchDb('reserve');
  const server = await startServer({ databaseUrl: db.url });
  try {
    const skus = Array.from({ length: 1000 }, (_, i) => `S${String(i).padStart(4, '0')}`);
    const key = await stockUp(server, skus);
    const pick = () => skus[Math.floor(Math.random() * skus.length)];
    console.log('\nMariaDB, one process, 1 000-SKU spread');
    await warmUp(server.url, key, pick);
    line('orders, 1 000 SKUs', await ordersRun(server.url, key, pick));
    line('checkouts, 1 000 SKUs', await checkoutsRun(server.url, key, pick), 2);
    console.log(await batches(server, 1));
    await finish(server, db.url);
  } finally {
    await server.stop();
    await db.drop();
  }
}

/** 4: SQLite, one writer: batching means fewer commits (each one an fsync). */
async function sqlite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pos-bench-sqlite-'));
  const url = `sqlite:${join(dir, 'pos.db')}`;
  const server = await startServer({ databaseUrl: url });
  try {
    const key = await stockUp(server, ['HOT']);
    console.log(`\nSQLite ${url}, one process, one hot SKU`);
    await warmUp(server.url, key);
    line('orders (reserve), SQLite', await ordersRun(server.url, key, () => 'HOT'));
    line('checkouts, SQLite', await checkoutsRun(server.url, key, () => 'HOT'), 2);
    console.log(await batches(server, 1));
    await finish(server, url);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 5: one service process per Galera node, all on the same hot SKU. */
async function galera(): Promise<void> {
  const urls = (process.env.GALERA_URLS ?? '').split(/\s+/).filter(Boolean);
  if (urls.length < 2) {
    console.log('\ngalera: set GALERA_URLS (scripts/galera.sh start prints it); skipped');
    return;
  }
  const prev = process.env.BENCH_DATABASE_URL;
  process.env.BENCH_DATABASE_URL = urls[0];
  const db = await benchDb('galera'); // created and migrated through node 1; DDL replicates
  if (prev === undefined) delete process.env.BENCH_DATABASE_URL;
  else process.env.BENCH_DATABASE_URL = prev;
  const name = new URL(db.url).pathname;
  const servers: BenchServer[] = [];
  try {
    for (const u of urls) {
      const x = new URL(u);
      x.pathname = name;
      servers.push(await startServer({ databaseUrl: x.toString() }));
    }
    const key = await stockUp(servers[0], ['HOT']);
    console.log(
      `\nGalera, ${urls.length} nodes, one process per node, one hot SKU, ${connections} connections split over them`,
    );
    const per = Math.max(1, Math.floor(connections / servers.length));
    const runs = await Promise.all(
      servers.map((s) =>
        cannon({
          url: s.url,
          connections: per,
          duration: seconds,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          requests: [
            {
              method: 'POST',
              path: '/v1/orders',
              body: orderBody('HOT'),
              onResponse: (status: number, body: string, context: Record<string, unknown>) => {
                if (status === 201) context.orderId = JSON.parse(body).id;
              },
            },
            {
              method: 'POST',
              body: payBody,
              setupRequest: (req: any, context: Record<string, unknown>) => ({
                ...req,
                path: `/v1/orders/${context.orderId}/payments`,
              }),
            },
          ],
        } as autocannon.Options),
      ),
    );
    runs.forEach((r, i) => line(`checkouts via node ${i + 1}`, r, 2));
    const total = runs.reduce((a, r) => a + r.requests.average / 2, 0);
    console.log(
      `checkouts over all nodes: ${fmt(total)}/s; p99 per node ${runs.map((r) => `${r.latency.p99} ms`).join(', ')}`,
    );
    for (let i = 0; i < servers.length; i++) console.log(`node ${i + 1} ${await batches(servers[i], 1)}`);
    for (const s of servers) await s.stop();
    const check = await posCheck(db.url);
    console.log(`pos check: ${check.clean ? 'clean' : `BREACHES\n${check.output}`}`);
    if (!check.clean) failed = true;
  } finally {
    for (const s of servers) await s.stop();
    process.env.BENCH_DATABASE_URL = urls[0];
    await db.drop();
    if (prev === undefined) delete process.env.BENCH_DATABASE_URL;
    else process.env.BENCH_DATABASE_URL = prev;
  }
}

async function main(): Promise<void> {
  console.log(
    `bench:reserve — batching ${process.env.POS_BATCH === 'off' ? 'OFF' : 'on'}; runs: ${[...only].join(', ')}`,
  );
  if (only.has('hot')) await hot();
  if (only.has('workers')) await workers();
  if (only.has('spread')) await spread();
  if (only.has('sqlite')) await sqlite();
  if (only.has('galera')) await galera();
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
