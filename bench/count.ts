/**
 * `npm run bench:count`: a stock count of 100 000 SKUs on MariaDB through the HTTP API of the
 * service running in its own process: open, upload one CSV (streamed), compute the variance view,
 * export it as CSV, approve. 1 % of the SKUs are counted short. Prints each step's time, the whole
 * cycle, and the server's peak memory (target: under 20 s and 300 MB), then `pos check`.
 */
import { Db, exec } from '../src/db/db';
import { api, benchDb, fmt, posCheck, startServer } from './support';

const N = Number(process.env.BENCH_SKUS || 100_000);

async function seed(url: string): Promise<void> {
  const db = await Db.fromUrl(url, { poolSize: 2 }).open();
  const now = Date.now();
  await db.tx(async (m) => {
    for (let i = 0; i < N; i += 2000) {
      const chunk = Array.from({ length: Math.min(2000, N - i) }, (_, k) => `SKU${String(i + k).padStart(6, '0')}`);
      await exec(
        m,
        `INSERT INTO sku (sku, name, price_fen, kind, on_hand, reserved, created_at, updated_at) VALUES ${chunk.map(() => "(?, ?, 990, 'goods', 12, 0, ?, ?)").join(', ')}`,
        chunk.flatMap((s) => [s, `item ${s}`, now, now]),
      );
      await exec(
        m,
        `INSERT INTO stock_movement (sku, kind, on_hand_delta, reserved_delta, ref, actor, at) VALUES ${chunk.map(() => "(?, 'receipt', 12, 0, 'bench', 'bench', ?)").join(', ')}`,
        chunk.flatMap((s) => [s, now]),
      );
    }
  });
  await db.close();
}

async function timed<T>(label: string, f: () => Promise<T>, times: [string, number][]): Promise<T> {
  const t0 = process.hrtime.bigint();
  const r = await f();
  times.push([label, Number(process.hrtime.bigint() - t0) / 1e9]);
  return r;
}

async function main(): Promise<void> {
  const db = await benchDb('count');
  await seed(db.url);
  const server = await startServer({ databaseUrl: db.url });
  try {
    const office = api(server.url, server.adminKey);
    const times: [string, number][] = [];
    const rssAtStart = server.peakRssMb();
    const opened = await timed('open (all SKUs)', () => office('POST', '/v1/stock-counts', {}), times);
    if (opened.status !== 201) throw new Error(JSON.stringify(opened.body));
    const id = opened.body.id as string;
    let csv = 'sku,counted\n';
    for (let i = 0; i < N; i++) csv += `SKU${String(i).padStart(6, '0')},${i % 100 === 0 ? 11 : 12}\n`;
    const up = await timed(
      `upload CSV (${fmt(csv.length / 1e6, 1)} MB)`,
      () => office('PUT', `/v1/stock-counts/${id}/lines`, csv, { 'content-type': 'text/csv' }),
      times,
    );
    if (up.status !== 200) throw new Error(JSON.stringify(up.body).slice(0, 500));
    const view = await timed(
      'variance view (totals + first page)',
      () => office('GET', `/v1/stock-counts/${id}?limit=1000`),
      times,
    );
    const exported = await timed(
      'CSV export (all lines)',
      async () =>
        (
          await fetch(`${server.url}/v1/stock-counts/${id}/export.csv`, {
            headers: { authorization: `Bearer ${server.adminKey}` },
          })
        ).text(),
      times,
    );
    const approved = await timed(
      'approve (post adjustments)',
      () => office('POST', `/v1/stock-counts/${id}/approve`, {}),
      times,
    );
    if (approved.status !== 200) throw new Error(JSON.stringify(approved.body).slice(0, 500));
    const peak = server.peakRssMb();

    console.log(`bench:count — ${fmt(N)} SKUs on MariaDB, server pid ${server.pid} (its own process)`);
    for (const [label, s] of times) console.log(`  ${label.padEnd(38)} ${s.toFixed(2)} s`);
    const total = times.reduce((a, [, s]) => a + s, 0);
    console.log(
      `whole cycle ${total.toFixed(2)} s (target < 20 s); server peak RSS ${peak} MB (${rssAtStart} MB after start; target < 300 MB)`,
    );
    console.log(
      `variance: ${view.body.totals.withVariance} SKUs, shrinkage ${view.body.totals.shrinkageUnits} units = ${view.body.totals.shrinkageFen} fen; export ${fmt(exported.split('\n').filter((l) => l && !l.startsWith('#')).length - 1)} SKU lines; ${approved.body.adjustments} adjustments posted`,
    );
    await server.stop();
    const check = await posCheck(db.url);
    console.log(`pos check: ${check.clean ? 'clean' : `BREACHES\n${check.output.slice(0, 2000)}`}`);
    if (!check.clean) process.exitCode = 1;
  } finally {
    await server.stop();
    await db.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
