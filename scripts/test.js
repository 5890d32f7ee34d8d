#!/usr/bin/env node
/*
 * `npm test`: the whole suite, on SQLite and on MySQL/MariaDB (TEST_DATABASE_URL, default
 * mysql://root@127.0.0.1:3306/test). Without a reachable MySQL it says loudly that it skipped that
 * suite; under CI=true it fails instead.
 */
const { spawnSync } = require('node:child_process');

async function mysqlReachable(url) {
  const mysql = require('mysql2/promise');
  try {
    const u = new URL(url);
    const c = await mysql.createConnection({
      host: u.hostname,
      port: Number(u.port || 3306),
      user: decodeURIComponent(u.username || 'root'),
      password: decodeURIComponent(u.password),
      database: u.pathname.slice(1) || undefined,
      connectTimeout: 3000,
    });
    await c.query('SELECT 1');
    await c.end();
    return true;
  } catch (err) {
    return String((err && err.message) || err);
  }
}

(async () => {
  const url = process.env.TEST_DATABASE_URL || 'mysql://root@127.0.0.1:3306/test';
  const env = { ...process.env, TEST_DATABASE_URL: url, POS_LOG: 'silent' };
  const ok = await mysqlReachable(url);
  if (ok !== true) {
    const banner = `\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!! MySQL/MariaDB at ${url} is not reachable: ${ok}\n!! The MySQL integration suite is SKIPPED; only SQLite runs.\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n`;
    process.stderr.write(banner);
    if (process.env.CI === 'true') {
      process.stderr.write('CI=true: a skipped MySQL suite is a failure.\n');
      process.exit(1);
    }
    env.POS_TEST_MYSQL = 'skip';
  }
  const args = ['--ci', ...process.argv.slice(2)];
  const r = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), ...args], { stdio: 'inherit', env });
  process.exit(r.status === null ? 1 : r.status);
})();
