import 'reflect-metadata';
import './capabilities';
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, configFromEnv } from './config';
import { Db } from './db/db';
import { createApp } from './app';
import { checkInvariants } from './inventory/check';
import { jsonLogger } from './shared/logger';
import { buildAdapters } from './adapters';
import { AuthService } from './auth/auth.service';
import { systemClock } from './shared/clock';
import { laneOptionsFromEnv } from './lane';
import { clusterMetricsPrimary } from './http/metrics';

const USAGE = `usage: pos <command>
  serve [--embedded] [--workers N]   the service, configured by the environment; N processes share the port and the database
  migrate                            apply migrations to DATABASE_URL and exit
  check                              recompute every stock invariant; exit 1 on any breach
  sim-terminal --port PATH [--script FILE] [--control HOST:PORT] [--acquirer URL]
  sim-acquirer --listen HOST:PORT [--cert-dir DIR] [--print-config]
  sim-printer --port PATH --out DIR [--control HOST:PORT] [--baud N]`;

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      const workers = workersArg(rest);
      if (cluster.isWorker) return serve(rest.includes('--embedded'), { worker: true });
      if (workers > 1) return serveCluster(workers);
      return serve(rest.includes('--embedded'));
    }
    case 'migrate':
      return migrate();
    case 'check':
      return check();
    case 'sim-terminal':
      return (await import('./terminal/simulator.cli')).runSimTerminal(rest);
    case 'sim-acquirer':
      return (await import('./acquirer/simulator.cli')).runSimAcquirer(rest);
    case 'sim-printer':
      return (await import('./printer/simulator.cli')).runSimPrinter(rest);
    default:
      process.stderr.write(`${USAGE}\n`);
      process.exitCode = cmd ? 2 : 0;
  }
}

async function migrate(): Promise<void> {
  const config = configFromEnv();
  const db = await Db.fromUrl(config.databaseUrl).open({ migrate: true });
  await db.close();
  process.stdout.write(`migrated ${redact(config.databaseUrl)}\n`);
}

async function check(): Promise<void> {
  const config = configFromEnv();
  const db = await Db.fromUrl(config.databaseUrl).open();
  if (await db.ds.showMigrations()) {
    await db.close();
    process.stderr.write(`pos check: ${redact(config.databaseUrl)} is not migrated (run \`pos migrate\` first)\n`);
    process.exitCode = 2;
    return;
  }
  const findings = await checkInvariants(db);
  await db.close();
  if (findings.length === 0) {
    process.stdout.write('pos check: every stock invariant holds\n');
    return;
  }
  for (const f of findings) process.stdout.write(`BREACH ${f.rule} ${f.subject}: ${f.detail}\n`);
  process.stdout.write(`pos check: ${findings.length} breach(es)\n`);
  process.exitCode = 1;
}

/**
 * The embedded default keeps one admin key in ./data so a restart finds the same one. Returns where
 * it lives and whether this start made it: only a key we generated is ever printed (one from the
 * environment or from an earlier start is the operator's secret and stays off the console and logs).
 */
function embeddedAdminKey(dbUrl: string): { key: string; file: string; generated: boolean } {
  const file = `${dirname(dbUrl.replace(/^sqlite:/, '') || './data/pos.db')}/admin.key`;
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), file, generated: false };
  const key = `pos_${randomBytes(32).toString('base64url')}`;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, file, generated: true };
}

function workersArg(args: string[]): number {
  const i = args.indexOf('--workers');
  if (i < 0) return 1;
  const n = Number(args[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new Error(`--workers takes a whole number from 1 to 64, got "${args[i + 1] ?? ''}"`);
  return n;
}

/**
 * `serve --workers N`: the primary migrates and creates the admin key once, then forks N workers that
 * share the listening port (node:cluster) and the database. Nothing is shared in memory: every guard
 * is a conditional UPDATE, so N processes are exactly as right as one. A worker that dies is replaced.
 */
async function serveCluster(n: number): Promise<void> {
  const config = configFromEnv();
  if (config.databaseUrl.startsWith('sqlite:'))
    throw new Error('--workers needs MySQL/MariaDB: SQLite has one writer, so more processes only queue on its lock');
  if (config.terminals.trim() !== '') {
    throw new Error(
      '--workers runs lane-less API processes: a serial terminal can be driven by one process only. Set POS_TERMINALS= (empty) or run one `pos serve` per set of lanes',
    );
  }
  const db = await Db.fromUrl(config.databaseUrl, { poolSize: 2 }).open({ migrate: true });
  if (config.adminKey) await new AuthService(db, systemClock).bootstrapAdmin(config.adminKey);
  await db.close();

  let stopping = false;
  const listening = new Set<number>();
  let announced = false;
  const fork = () => {
    const w = cluster.fork({ POS_WORKER: '1' });
    w.on('message', (msg: { listening?: string }) => {
      if (!msg?.listening) return;
      listening.add(w.id);
      if (!announced && listening.size >= n) {
        announced = true;
        process.stdout.write(`POS service listening on ${msg.listening} (${n} workers)\n`);
        process.stdout.write(`database: ${redact(config.databaseUrl)}; lanes: none; workers: ${n}\n`);
        if (config.adminKey) process.stdout.write('admin key: from POS_ADMIN_KEY\n');
      }
    });
  };
  cluster.on('exit', (w, code, signal) => {
    listening.delete(w.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    process.stderr.write(`worker ${w.process.pid} exited (${signal ?? code}); starting another\n`);
    fork();
  });
  // One scrape of /metrics (whichever worker takes it) shows every worker's counts.
  clusterMetricsPrimary();
  for (let i = 0; i < n; i++) fork();
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function serve(embedded: boolean, opts: { worker?: boolean } = {}): Promise<void> {
  const config = configFromEnv();
  const log = jsonLogger();
  let generated: { key: string; file: string; generated: boolean } | null = null;
  if (embedded && !config.adminKey && config.databaseUrl.startsWith('sqlite:')) {
    generated = embeddedAdminKey(config.databaseUrl);
    config.adminKey = generated.key;
  }
  // A worker's primary has migrated already; migrating from N workers at once would race on the schema.
  const db = await Db.fromUrl(config.databaseUrl).open({ migrate: !opts.worker });
  const adapters = await buildAdapters(config, log);
  const app = await createApp({
    config,
    db,
    terminals: adapters.terminals,
    acquirer: adapters.acquirer,
    log,
    printers: adapters.printers,
    lane: laneOptionsFromEnv(),
    processMetrics: true,
  });
  if (opts.worker) app.metrics.joinCluster();
  const { url } = await app.listen(config.port, config.host);
  if (opts.worker) {
    process.send?.({ listening: url });
    const stopWorker = async () => {
      await app.close();
      await adapters.close();
      await db.close();
      process.exit(0);
    };
    process.once('SIGTERM', stopWorker);
    process.once('SIGINT', () => undefined); // the primary decides
    return;
  }
  process.stdout.write(`POS service listening on ${url}\n`);
  process.stdout.write(
    `database: ${redact(config.databaseUrl)}; lanes: ${[...adapters.terminals.keys()].join(', ') || 'none'}; acquirer: ${adapters.acquirerDescription}\n`,
  );
  process.stdout.write(`printers: ${adapters.printerDescriptions.join('; ') || 'none'}\n`);
  if (generated?.generated)
    process.stdout.write(`admin key: ${generated.key} (generated; kept in ${generated.file})\n`);
  else if (generated) process.stdout.write(`admin key: in ${generated.file}\n`);
  else if (config.adminKey) process.stdout.write('admin key: from POS_ADMIN_KEY\n');
  const firstLane = [...adapters.terminals.keys()][0] ?? 'lane-1';
  process.stdout.write(`lane (cashier screen): ${url}/lane?lane=${firstLane}\nback office: ${url}/backoffice\n`);
  const stop = async () => {
    await app.close();
    await adapters.close();
    await db.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(err instanceof ConfigError ? `pos: ${err.message}\n` : `${err?.stack ?? err}\n`);
    process.exit(2);
  });
}
