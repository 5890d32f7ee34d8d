/**
 * `npm run bench:recon`: a generated 1 000 000-line ZM file reconciled against 1 000 000 card
 * payments by the service in its own process, the ZIP streamed to it as an upload (the same
 * code path a download takes after the ZIP is on disk). 0.1 % of the lines settle a different
 * amount, 100 lines carry order ids we never issued and 100 payments are missing from the file.
 * Prints the run's time and the server's peak RSS (targets: < 120 s, < 300 MB).
 * The database is SQLite in a temp dir (the service's default) unless BENCH_DATABASE_URL names a
 * MySQL/MariaDB server (a fresh schema is made there, as in the other benches); BENCH_RECON_LINES the size.
 * BENCH_RECON_REUSE=<database url> keeps a seeded database for the next run (seeded when it has no payments,
 * else only its reconciliation tables are emptied): seeding 1 000 000 payments takes minutes on MariaDB.
 */
import { createReadStream, createWriteStream, existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'node:http';
import { Db, exec, rows } from '../src/db/db';
import { newId } from '../src/shared/ids';
import { writeReconZip } from '../src/reconciliation/recon-zip';
import { formatZmLine } from '../src/reconciliation/zm-format';
import { addDays, mmdd, settleDayAt } from '../src/reconciliation/settle-day';
import { benchDb, fmt, posCheck, startServer } from './support';

const N = Number(process.env.BENCH_RECON_LINES || 1_000_000);
const MER_ID = '777290058110048';
const DAY = addDays(settleDayAt(new Date()), -1);
const rf = (i: number) => `B${String(i).padStart(9, '0')}`;
const amount = (i: number) => 100 + (i % 9000);
const txnTime = (i: number) =>
  `${DAY.replace(/-/g, '')}${String(Math.floor((i % 36000) / 3600) + 9).padStart(2, '0')}${String(Math.floor((i % 3600) / 60)).padStart(2, '0')}${String(i % 60).padStart(2, '0')}`;
const MISSING = new Set(Array.from({ length: 100 }, (_, k) => 7 + k * Math.floor(N / 100)));

async function sqliteDb(url: string) {
  const db = await Db.fromUrl(url).open({ migrate: true });
  await db.close();
  return { url, drop: async () => rmSync(url.replace(/^sqlite:/, ''), { force: true }) };
}

async function reusedDb(url: string) {
  const db = await Db.fromUrl(url).open({ migrate: true });
  await db.close();
  return { url, drop: async () => undefined };
}

/** Empties the reconciliation tables of a reused database; false when it has no payments yet. */
async function emptyRecon(url: string): Promise<boolean> {
  const db = await Db.fromUrl(url, { poolSize: 1 }).open();
  try {
    const [{ n }] = await db.read((m) => rows<{ n: unknown }>(m, 'SELECT COUNT(*) AS n FROM payment'));
    if (Number(n) === 0) return false;
    if (Number(n) !== N) throw new Error(`${url} holds ${String(n)} payments, not ${N}: use another database`);
    await db.tx(async (m) => {
      for (const t of ['recon_action', 'recon_resolution', 'recon_item', 'recon_run'])
        await exec(m, `DELETE FROM ${t}`);
    });
    return true;
  } finally {
    await db.close();
  }
}

async function seed(url: string): Promise<void> {
  const db = await Db.fromUrl(url, { poolSize: 2 }).open();
  const now = Date.now();
  const cols = [
    'id',
    'order_id',
    'method',
    'amount_fen',
    'status',
    'lane',
    'rf',
    'txn_time',
    'acked',
    'trace_no',
    'terminal_id',
    'settle_date',
    'query_id',
    'checks',
    'created_by',
    'created_at',
    'updated_at',
    'finished_at',
  ];
  const row = `(${cols.map(() => '?').join(', ')})`;
  for (let i = 0; i < N; i += 10_000) {
    await db.tx(async (m) => {
      for (let j = i; j < Math.min(N, i + 10_000); j += 1000) {
        const ids = Array.from({ length: Math.min(1000, N - j) }, (_, k) => j + k);
        await exec(
          m,
          `INSERT INTO payment (${cols.join(', ')}) VALUES ${ids.map(() => row).join(', ')}`,
          ids.flatMap((n) => [
            newId(), // the service's own ids, made in the order the payments happened
            newId(),
            'card',
            amount(n),
            'approved',
            'lane-1',
            rf(n),
            txnTime(n),
            1,
            String(n % 1_000_000).padStart(6, '0'),
            '00000001',
            mmdd(DAY),
            `Q${String(n).padStart(20, '0')}`,
            0,
            'bench',
            now,
            now,
            now,
          ]),
        );
      }
    });
  }
  await db.close();
}

async function* lines(): AsyncGenerator<Buffer> {
  for (let i = 0; i < N; i++) {
    if (MISSING.has(i)) continue;
    const mismatch = i % 1000 === 3;
    yield formatZmLine({
      amountFen: amount(i) + (mismatch ? 1 : 0),
      rf: rf(i),
      traceNo: String(i % 1_000_000).padStart(6, '0'),
      txnTime: txnTime(i).slice(4),
      queryId: `Q${String(i).padStart(20, '0')}`,
      feeFen: Math.round(amount(i) * 0.006),
      merId: MER_ID,
      terminalId: '00000001',
    });
  }
  for (let k = 0; k < 100; k++)
    yield formatZmLine({
      amountFen: 500,
      rf: `FOREIGN${k}`,
      traceNo: '999999',
      txnTime: '0101000000',
      queryId: `F${String(k).padStart(20, '0')}`,
      merId: MER_ID,
    });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-recon-'));
  const reuse = process.env.BENCH_RECON_REUSE;
  const useUrl = reuse ?? process.env.BENCH_DATABASE_URL ?? `sqlite:${join(dir, 'pos.db')}`;
  const db = reuse
    ? await reusedDb(reuse)
    : useUrl.startsWith('sqlite:')
      ? await sqliteDb(useUrl)
      : await benchDb('recon');
  try {
    let t0 = Date.now();
    if (!reuse || !(await emptyRecon(db.url))) {
      await seed(db.url);
      console.log(`seeded ${fmt(N)} approved card payments in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } else console.log(`reusing the ${fmt(N)} payments seeded earlier in ${db.url}`);
    t0 = Date.now();
    // A reused database keeps its generated ZIP beside it (same lines, same day) in the temp dir.
    const zipPath = reuse
      ? join(tmpdir(), `bench-recon-${N}-${DAY}.zip`)
      : join(dir, `${MER_ID}_${DAY.replace(/-/g, '')}.zip`);
    if (!reuse || !existsSync(zipPath)) {
      await pipeline(
        writeReconZip({ merId: MER_ID, settleDay: DAY, lines: lines() }),
        createWriteStream(`${zipPath}.part`),
      );
      renameSync(`${zipPath}.part`, zipPath);
    }
    console.log(
      `ZIP (${fmt(N - MISSING.size + 100)} ZM lines, ${fmt(statSync(zipPath).size / 1e6, 1)} MB compressed) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    const server = await startServer({ databaseUrl: db.url, env: { ACQUIRER_URL: 'none', POS_LOG: 'info' } });
    try {
      const rssAtStart = server.peakRssMb();
      t0 = Date.now();
      // node:http rather than fetch: fetch gives up waiting for the answer's headers after 300 s.
      const run = await new Promise<{
        status: string;
        counts: Record<string, number>;
        totals: unknown;
        problem: unknown;
        file: unknown;
      }>((resolve, reject) => {
        const req = request(
          `${server.url}/v1/reconciliations?settleDate=${DAY}`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/zip', authorization: `Bearer ${server.adminKey}` },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => {
              try {
                resolve(JSON.parse(body));
              } catch {
                reject(new Error(`${res.statusCode}: ${body.slice(0, 500)}`));
              }
            });
          },
        );
        req.on('error', reject);
        createReadStream(zipPath).pipe(req);
      });
      const seconds = (Date.now() - t0) / 1000;
      const peak = server.peakRssMb();
      console.log(
        `bench:recon — ${fmt(N)} payments, ${db.url.split(':')[0]}, server pid ${server.pid} (its own process)`,
      );
      console.log(
        `  run ${run.status} in ${seconds.toFixed(1)} s (target < 120 s); server peak RSS ${peak} MB (${rssAtStart} MB after start; target < 300 MB)`,
      );
      console.log(`  counts ${JSON.stringify(run.counts)}; totals ${JSON.stringify(run.totals)}`);
      if (run.status !== 'done') console.log(`  problem: ${JSON.stringify(run.problem)}`);
    } finally {
      await server.stop();
    }
    const check = await posCheck(db.url);
    console.log(`pos check: ${check.clean ? 'clean' : `BREACHES\n${check.output.slice(0, 2000)}`}`);
  } finally {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
