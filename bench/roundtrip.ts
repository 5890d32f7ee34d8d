/**
 * `node dist/bench/roundtrip.js`: what one statement and one commit cost on the benchmark database
 * right now (BENCH_DATABASE_URL, default MariaDB on 127.0.0.1:3306), for reading the other figures:
 * an order batch is ~9 round trips and one commit, and on a shared machine these move a lot.
 */
import { Db, exec, rows } from '../src/db/db';
import { benchDb } from './support';

async function main(): Promise<void> {
  const fresh = await benchDb('rt');
  const db = await Db.fromUrl(fresh.url, { poolSize: 1 }).open();
  try {
    const qr = db.ds.createQueryRunner();
    await qr.connect();
    await qr.query('CREATE TABLE rt (id INT PRIMARY KEY, v BIGINT)');
    await qr.query('INSERT INTO rt VALUES (1, 0)');
    const N = Number(process.env.BENCH_ROUNDS || 300);
    const t = { begin: 0, select: 0, update: 0, commit: 0 };
    const ms = () => Number(process.hrtime.bigint()) / 1e6;
    for (let i = 0; i < N; i++) {
      let a = ms();
      await qr.startTransaction();
      t.begin += ms() - a;
      a = ms();
      await rows(qr.manager, 'SELECT v FROM rt WHERE id = 1');
      t.select += ms() - a;
      a = ms();
      await exec(qr.manager, 'UPDATE rt SET v = v + 1 WHERE id = 1');
      t.update += ms() - a;
      a = ms();
      await qr.commitTransaction();
      t.commit += ms() - a;
    }
    await qr.release();
    console.log(
      `db round trips on ${fresh.url.replace(/\/\/[^@]*@/, '//')}, mean of ${N}: ` +
        Object.entries(t)
          .map(([k, v]) => `${k} ${(v / N).toFixed(2)} ms`)
          .join(', '),
    );
  } finally {
    await db.close();
    await fresh.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
