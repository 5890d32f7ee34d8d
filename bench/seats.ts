/**
 * `npm run bench:seats`: an on-sale burst. 2 000 seats (100 rows of 20), 256 connections each
 * asking to hold a random pair of adjacent seats, until no free adjacent pair is left (or 60 s), after
 * two seconds of the same load, on the same connections, on another event of the same size that are
 * not counted (warm-up), on MariaDB with the service in its own process. Prints holds/s, p50/p99
 * latency (the opening wave apart too) and the number of seats held or sold by more than one order
 * (must be 0), then `pos check`. Runs once with one process and once with `serve --workers 2`
 * (`BENCH_WORKERS=N`: N only).
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { Db, rows } from '../src/db/db';
import {
  api,
  batchStats,
  benchDb,
  fmt,
  localDatabasePid,
  percentile,
  posCheck,
  processFigures,
  scrapeMetrics,
  startServer,
  treeCpuSeconds,
} from './support';

const ROWS = 100;
const PER_ROW = 20;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 256);
/** One process, then `serve --workers 2` (a worker per core); BENCH_WORKERS=N runs that count only. */
const WORKER_COUNTS = process.env.BENCH_WORKERS ? [Number(process.env.BENCH_WORKERS)] : [1, 2];

async function run(workers: number): Promise<void> {
  const db = await benchDb('seats');
  const server = await startServer({ databaseUrl: db.url, workers });
  try {
    const admin = api(server.url, server.adminKey);
    const seats = [];
    for (let r = 1; r <= ROWS; r++)
      for (let n = 1; n <= PER_ROW; n++)
        seats.push({ id: `R${r}-${n}`, section: 'STALLS', row: String(r), number: n, priceFen: 38_000 });
    for (const id of ['warmup', 'onsale']) {
      const ev = await admin('POST', '/v1/events', { id, name: `On-sale burst (${id})`, seats });
      if (ev.status !== 201) throw new Error(`event: ${JSON.stringify(ev.body)}`);
    }
    const key = (await admin('POST', '/v1/api-keys', { role: 'cashier' })).body.key as string;
    const box = api(server.url, key);
    const pairBody = () => {
      const row = 1 + Math.floor(Math.random() * ROWS);
      const n = 1 + Math.floor(Math.random() * (PER_ROW - 1));
      return JSON.stringify({ seats: [`R${row}-${n}`, `R${row}-${n + 1}`], ttlSeconds: 900 });
    };
    let holds = 0;
    let refused = 0;
    const others = new Map<string, number>(); // any other answer, by status and error code (a 5xx here is a bug)
    const latencies: number[] = []; // the on-sale's, in the order answered: the first CONNECTIONS are its opening wave
    /**
     * One load generator for the warm-up and the on-sale: the connections that sell are those the warm-up
     * opened, as a proxy's pooled connections or buyers waiting on the event page would be. Timed from a
     * new autocannon instance instead, the first answers also carried the generator building its 256
     * clients and their connections being accepted: against a handler that does no work, the first 256
     * answers on new connections took 36–114 ms at most, against a p50 of 14–27 ms after them
     * (`node dist/bench/opening-wave.js`, five rounds, 2026-12-06).
     */
    let event = 'warmup';
    let instance: autocannon.Instance | null = null;
    const done = new Promise<autocannon.Result>((resolve, reject) => {
      instance = autocannon(
        {
          url: server.url,
          connections: CONNECTIONS,
          duration: 2 + 60,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          requests: [
            {
              method: 'POST',
              // Each connection has one request out at a time: its context carries the request's event and start.
              setupRequest: (req: any, context: { sent?: bigint; event?: string }) => {
                context.event = event;
                context.sent = process.hrtime.bigint();
                return { ...req, path: `/v1/events/${event}/holds`, body: pairBody() };
              },
              onResponse: (status: number, body: string, context: { sent?: bigint; event?: string }) => {
                if (context.event !== 'onsale') return;
                latencies.push(Number(process.hrtime.bigint() - (context.sent ?? 0n)) / 1e6);
                if (status === 201) holds++;
                else if (status === 409) refused++;
                else {
                  const k = `${status} ${/"code":"([a-z_]+)"/.exec(body)?.[1] ?? ''}`;
                  others.set(k, (others.get(k) ?? 0) + 1);
                }
              },
            },
          ],
        } as autocannon.Options,
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
    // Two seconds not counted, on an event of its own: the connections open, the pool's too, the JIT warm.
    await new Promise((r) => setTimeout(r, 2000));

    let loadBefore = '?';
    try {
      loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    } catch {
      /* not Linux */
    }
    const metricsBefore = await scrapeMetrics(server.url);
    const cpuBefore = treeCpuSeconds(server.pid);
    const dbPid = localDatabasePid();
    const dbCpuBefore = dbPid ? treeCpuSeconds(dbPid) : 0;
    const benchCpuBefore = process.cpuUsage();
    const started = Date.now();
    event = 'onsale'; // every request sent from now on
    const run = { done, stop: () => (instance as unknown as { stop(): void } | null)?.stop() };
    // Sold out for pairs: no two adjacent free seats left anywhere.
    const soldOut = async () => {
      const map = (await box('GET', '/v1/events/onsale/seats')).body as {
        row: string;
        number: number;
        status: string;
      }[];
      const free = new Set(map.filter((s) => s.status === 'free').map((s) => `${s.row}:${s.number}`));
      for (const f of free) {
        const [r, n] = f.split(':');
        if (free.has(`${r}:${Number(n) + 1}`)) return false;
      }
      return true;
    };
    const poll = setInterval(() => {
      void soldOut().then((done) => {
        if (done) run.stop();
      });
    }, 500);
    const result = await run.done;
    clearInterval(poll);
    const seconds = (Date.now() - started) / 1000;
    const serverCpu = treeCpuSeconds(server.pid) - cpuBefore;
    const dbCpu = dbPid ? treeCpuSeconds(dbPid) - dbCpuBefore : NaN;
    const benchUsage = process.cpuUsage(benchCpuBefore);
    const benchCpu = (benchUsage.user + benchUsage.system) / 1e6;
    const metricsAfter = await scrapeMetrics(server.url);

    const map = (await box('GET', '/v1/events/onsale/seats')).body as { status: string }[];
    const warm = (await box('GET', '/v1/events/warmup/seats')).body as { status: string }[];
    const warmHeld = warm.filter((x) => x.status !== 'free').length;
    const held = map.filter((s) => s.status !== 'free').length;
    const dbh = await Db.fromUrl(db.url, { poolSize: 1 }).open();
    const doubles = await dbh.read((m) =>
      rows<{ sku: string }>(
        m,
        "SELECT sku FROM order_line WHERE sku LIKE 'EVT:%' AND reservation IN ('active', 'sold') GROUP BY sku HAVING COUNT(*) > 1",
      ),
    );
    await dbh.close();

    console.log(
      `bench:seats — ${ROWS * PER_ROW} seats, ${CONNECTIONS} connections asking for random adjacent pairs, MariaDB, server pid ${server.pid}${workers > 1 ? ` (${workers} workers)` : ''}`,
    );
    const answered = latencies.length;
    console.log(
      `ran ${seconds.toFixed(1)} s: ${fmt(answered)} hold requests (${fmt(answered / seconds)}/s), ${fmt(holds)} holds granted (${fmt(holds / seconds, 1)} holds/s), ${fmt(refused)} refused seat_unavailable, other answers ${answered - holds - refused}, connection errors (warm-up included) ${result.errors}${others.size ? ` (${[...others].map(([k, n]) => `${k}: ${n}`).join(', ')})` : ''}`,
    );
    // CPU the server process (and its workers) spent per request: a figure the other loads on a shared machine move less than req/s.
    console.log(
      `server CPU ${serverCpu.toFixed(1)} s over the run (${((100 * serverCpu) / seconds).toFixed(0)} % of one core), ${((1000 * serverCpu) / Math.max(1, answered)).toFixed(3)} ms per request; load average before the run ${loadBefore}`,
    );
    // The two cores are shared: what the load generator (this process) and the database took of them meanwhile.
    console.log(
      `the load generator took ${((100 * benchCpu) / seconds).toFixed(0)} % of one core, the database ${Number.isNaN(dbCpu) ? '– (not local)' : `${((100 * dbCpu) / seconds).toFixed(0)} %`}`,
    );
    // Nearest rank over every on-sale answer, each timed from the moment its request was made to its answer.
    const pct = (xs: number[], p: number) => (xs.length ? percentile(xs, p).toFixed(0) : '–');
    console.log(`latency p50 ${pct(latencies, 0.5)} ms, p99 ${pct(latencies, 0.99)} ms, max ${pct(latencies, 1)} ms`);
    // The opening wave (every connection's first on-sale request, when every seat is free and each is granted and
    // written) is 1–2 % of a run of a few seconds: it, more than the steady state, sets the p99.
    const wave = latencies.slice(0, CONNECTIONS);
    const rest = latencies.slice(CONNECTIONS);
    console.log(
      `the opening wave (the first ${wave.length} answers): p50 ${pct(wave, 0.5)} ms, max ${pct(wave, 1)} ms; the ${fmt(rest.length)} after it: p50 ${pct(rest, 0.5)} ms, p99 ${pct(rest, 0.99)} ms`,
    );
    console.log(processFigures(metricsBefore, metricsAfter, seconds));
    console.log(
      `seats held at the end ${held}/${ROWS * PER_ROW} (${holds * 2} by granted holds; the warm-up event ${warmHeld}); seats held or sold by more than one order, both events: ${doubles.length}`,
    );
    const batches = [...(await batchStats(server.url, workers))].map(
      ([k, s]) =>
        `${k} ${s.batches ? (s.requests / s.batches).toFixed(1) : '–'} (${fmt(s.batches)} batches${s.fallbacks ? `, ${s.fallbacks} fell back` : ''})`,
    );
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const seatBatches = [...metrics.matchAll(/^pos_seat_hold_batches\{kind="(\w+)"\} (\S+)$/gm)]
      .map((m) => `${m[1]} ${fmt(Number(m[2]))}`)
      .join(', ');
    const secs = (stat: string) =>
      Number(new RegExp(`^pos_batch_seconds_${stat}\\{batch="seat_holds"\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 0);
    const meanMs = secs('count') ? ((1000 * secs('sum')) / secs('count')).toFixed(1) : '–';
    console.log(
      `mean batch size (warm-up included): ${batches.join('; ') || 'batching off'}${seatBatches ? `; seat-hold batches: ${seatBatches}, mean ${meanMs} ms each` : ''}`,
    );
    await server.stop();
    const check = await posCheck(db.url);
    console.log(`pos check: ${check.clean ? 'clean' : `BREACHES\n${check.output}`}`);
    if (!check.clean || doubles.length > 0 || held !== holds * 2) process.exitCode = 1;
  } finally {
    await server.stop();
    await db.drop();
  }
}

async function main(): Promise<void> {
  for (const workers of WORKER_COUNTS) await run(workers);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
