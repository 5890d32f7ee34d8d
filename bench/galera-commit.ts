/**
 * `node dist/bench/galera-commit.js` (GALERA_URLS from `scripts/galera.sh start`): does a COMMIT at the
 * end of a multi-statement packet report a transaction that certification threw away? Two nodes race
 * ROUNDS times on one row: node 1 adds 1 (autocommit), node 2 adds 10 in a transaction, either with its
 * COMMIT in the same packet as its UPDATE ("packet", what db.runAllAndCommit sends) or as a query of
 * its own ("separate", what db.tx sends). Prints, for each way, how often node 2 was told OK, how often
 * it got an error, and how often it was told OK although its +10 is not in the row (a phantom commit).
 * Why runAllAndCommit sends its COMMIT on its own on Galera (src/db/db.ts).
 */
import mysql from 'mysql2/promise';

const ROUNDS = Number(process.env.BENCH_ROUNDS || 300);
const urls = (process.env.GALERA_URLS ?? '').split(/\s+/).filter(Boolean);

async function connect(url: string): Promise<mysql.Connection> {
  const u = new URL(url);
  return mysql.createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1) || 'test',
    multipleStatements: true,
  });
}

const GUARD = 'SELECT (SELECT 1 UNION ALL SELECT 2 FROM DUAL WHERE ROW_COUNT() <> 1) AS guard';

async function race(mode: 'packet' | 'separate'): Promise<{ ok: number; failed: number; phantom: number }> {
  const [a, b, c] = [await connect(urls[0]), await connect(urls[1]), await connect(urls[1])];
  try {
    await a.query('DROP TABLE IF EXISTS bench_galera_commit');
    await a.query('CREATE TABLE bench_galera_commit (id INT PRIMARY KEY, v INT NOT NULL)');
    await a.query('INSERT INTO bench_galera_commit VALUES (1, 0)');
    await c.query('SET SESSION wsrep_sync_wait = 1'); // c's reads wait for every write set before them
    const out = { ok: 0, failed: 0, phantom: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      await a.query('UPDATE bench_galera_commit SET v = 0 WHERE id = 1');
      await c.query('SELECT v FROM bench_galera_commit WHERE id = 1');
      const update = 'START TRANSACTION; UPDATE bench_galera_commit SET v = v + 10 WHERE id = 1';
      const told = (async () => {
        try {
          if (mode === 'packet') await b.query(`${update}; ${GUARD}; COMMIT`);
          else {
            await b.query(`${update}; ${GUARD}`);
            await b.query('COMMIT');
          }
          return true;
        } catch {
          await b.query('ROLLBACK').catch(() => undefined);
          return false;
        }
      })();
      const [ok] = await Promise.all([told, a.query('UPDATE bench_galera_commit SET v = v + 1 WHERE id = 1')]);
      const [r] = (await c.query('SELECT v FROM bench_galera_commit WHERE id = 1')) as unknown as [{ v: number }[]];
      if (ok) out.ok++;
      else out.failed++;
      if (ok && r[0].v < 10) out.phantom++;
    }
    await a.query('DROP TABLE bench_galera_commit');
    return out;
  } finally {
    for (const x of [a, b, c]) await x.end().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  if (urls.length < 2) throw new Error('GALERA_URLS must name two nodes or more (scripts/galera.sh start)');
  console.log(`bench:galera-commit — ${ROUNDS} races of one row between ${urls[0]} and ${urls[1]}`);
  for (const mode of ['packet', 'separate'] as const) {
    const r = await race(mode);
    console.log(
      `COMMIT ${mode === 'packet' ? "in the UPDATE's packet" : 'on its own'}: told OK ${r.ok}, error ${r.failed}, ` +
        `told OK but not committed ${r.phantom}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
