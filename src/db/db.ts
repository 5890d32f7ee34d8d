import { DataSource, EntityManager, QueryResult, QueryRunner } from 'typeorm';
import { DataSourceOpts, DbKind, dbKindOf, makeDataSource } from './data-source';

/** A FIFO lock: SQLite has one connection, so transactions must not interleave on it. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

const RETRYABLE_MYSQL = new Set([1213 /* deadlock */, 1205 /* lock wait timeout */]);

/** A deadlock (1213) or lock wait timeout (1205): the transaction rolled back and may run again. */
export function isRetryable(err: unknown): boolean {
  const e = err as { errno?: number; driverError?: { errno?: number } } | null;
  const errno = e?.errno ?? e?.driverError?.errno;
  return errno !== undefined && RETRYABLE_MYSQL.has(errno);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The pooled MySQL connections whose session is already READ COMMITTED (see Db.readCommittedTx). */
const readCommittedSessions = new WeakSet<object>();
/** The data sources whose server is a Galera node (Db.open): runAllAndCommit leaves their COMMIT to db.tx. */
const galeraSources = new WeakSet<object>();

/**
 * The one way to touch the database. `tx` runs a whole unit of work in a transaction, retried as a
 * whole on deadlock (MySQL/MariaDB) and serialised on SQLite. No network or serial I/O inside `fn`.
 */
export class Db {
  readonly kind: DbKind;
  /** A MariaDB Galera node (wsrep_on): row locks are local to the node, conflicts surface as 1213 at commit. */
  galera = false;
  private readonly mutex = new Mutex();
  /** The connection takes several statements in one query (db.runAll, START TRANSACTION with the first). */
  get multiStatements(): boolean {
    return multiStatementsOn(this.ds.manager);
  }

  constructor(readonly ds: DataSource) {
    this.kind = ds.options.type === 'better-sqlite3' ? 'sqlite' : 'mysql';
  }

  /** Maps the entities the capabilities registered (src/capabilities.ts) unless `opts.entities` says otherwise. */
  static fromUrl(url: string, opts: DataSourceOpts = {}): Db {
    dbKindOf(url);
    return new Db(makeDataSource(url, opts));
  }

  async open(opts: { migrate?: boolean } = {}): Promise<this> {
    if (!this.ds.isInitialized) await this.ds.initialize();
    if (this.kind === 'mysql') {
      const r: { on: unknown }[] = await this.ds.query('SELECT @@wsrep_on AS `on`').catch(() => [{ on: 0 }]); // MySQL has no wsrep_on
      this.galera = Number(r[0]?.on) === 1;
      if (this.galera) galeraSources.add(this.ds);
    }
    if (opts.migrate) await this.migrate();
    return this;
  }

  async migrate(): Promise<void> {
    await this.serialised(() => this.ds.runMigrations({ transaction: 'each' }));
  }

  async close(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
  }

  async tx<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    if (this.kind === 'sqlite') return this.mutex.run(() => this.ds.transaction(fn));
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readCommittedTx(fn);
      } catch (err) {
        // Galera certification failures come in bursts while another node works the same rows: more tries, longer waits.
        if (!isRetryable(err) || attempt >= (this.galera ? 16 : 8)) throw err;
        await sleep(Math.random() * (this.galera ? Math.min(10 * attempt, 100) : 5 * attempt));
      }
    }
  }

  /**
   * What `ds.transaction('READ COMMITTED', fn)` does, less two round trips: TypeORM sends `SET
   * TRANSACTION ISOLATION LEVEL` before every `START TRANSACTION`; here each pooled connection is put
   * in READ COMMITTED for its session once, the first time a transaction runs on it, and START
   * TRANSACTION rides with the transaction's first statement (openWithFirstStatement).
   */
  private async readCommittedTx<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    const qr = this.ds.createQueryRunner();
    try {
      const conn = (await qr.connect()) as object;
      if (!readCommittedSessions.has(conn)) {
        await qr.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
        readCommittedSessions.add(conn);
      }
      if (this.multiStatements) openWithFirstStatement(qr);
      else await qr.startTransaction();
      try {
        const result = await fn(qr.manager);
        // runAllAndCommit may have sent the COMMIT with the transaction's last statements.
        if (qr.isTransactionActive) await qr.commitTransaction();
        return result;
      } catch (err) {
        if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
        throw err;
      }
    } finally {
      await qr.release();
    }
  }

  /** Reads outside a transaction; on SQLite they queue behind writers so they never see half a unit of work. */
  read<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.serialised(() => fn(this.ds.manager));
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    return this.kind === 'sqlite' ? this.mutex.run(fn) : fn();
  }

  /** `FOR UPDATE` where the database has row locks; SQLite's single writer makes it moot there. */
  get forUpdate(): string {
    return this.kind === 'mysql' ? ' FOR UPDATE' : '';
  }

  /** A shared row lock where the database has row locks (MariaDB and MySQL 8 both take this spelling). */
  get forShare(): string {
    return this.kind === 'mysql' ? ' LOCK IN SHARE MODE' : '';
  }

  /**
   * Empty on Galera as well: SKIP LOCKED skips only this node's locks, and a local FOR UPDATE on rows
   * another node is writing gets the holder aborted (1213) again and again. The claim there rests on
   * certification: two nodes claiming the same rows cannot both commit, and the loser retries.
   */
  get forUpdateSkipLocked(): string {
    return this.kind === 'mysql' && !this.galera ? ' FOR UPDATE SKIP LOCKED' : '';
  }
}

/**
 * Opens the query runner's transaction with its first statement: that statement goes as
 * `START TRANSACTION;` + itself in one packet (the connection has `multipleStatements`), and its
 * answer is handed back as if it had gone alone. One round trip less per transaction, and a
 * round trip is what costs here (see runAll). Hand-written: TypeORM's startTransaction always sends
 * START TRANSACTION on its own. The runner is marked in a transaction as startTransaction would
 * (COMMIT and ROLLBACK then go as usual; either is harmless if nothing was sent).
 */
function openWithFirstStatement(qr: QueryRunner): void {
  const query = qr.query.bind(qr) as (sql: string, params?: unknown[], structured?: boolean) => Promise<unknown>;
  let first = true;
  qr.query = (async (sql: string, params?: unknown[], structured?: boolean) => {
    if (!first) return query(sql, params, structured);
    first = false;
    const r = (await query(`START TRANSACTION;\n${sql}`, params, true)) as QueryResult;
    const all = r.raw as unknown[];
    // [START's header, the statement's answer] or, for a multi-statement one, [START's header, ...its answers].
    const raw = all.length === 2 ? all[1] : all.slice(1);
    const out = new QueryResult();
    out.raw = raw;
    if (Array.isArray(raw)) out.records = raw;
    if (raw && typeof raw === 'object' && 'affectedRows' in raw) out.affected = Number(raw.affectedRows);
    return structured ? out : out.raw;
  }) as QueryRunner['query'];
  const state = qr as unknown as { isTransactionActive: boolean; transactionDepth: number };
  state.isTransactionActive = true;
  state.transactionDepth = 1;
}

/** Runs a write and returns the number of rows it changed (both drivers). */
export async function exec(m: EntityManager, sql: string, params: unknown[] = []): Promise<number> {
  const qr = m.queryRunner ?? m.connection.createQueryRunner();
  try {
    const res = await qr.query(sql, params, true);
    return res.affected ?? 0;
  } finally {
    if (!m.queryRunner) await qr.release();
  }
}

/** Runs a read and returns its rows. */
export function rows<T = Record<string, unknown>>(m: EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  return m.query(sql, params);
}

/**
 * A statement for runAll. With `guard`, it must change exactly `guard.rows` rows (a conditional
 * UPDATE's WHERE is the guard); any other count throws `guard.error()`, and the caller's transaction
 * rolls back.
 */
export interface Stmt {
  sql: string;
  params: unknown[];
  guard?: { rows: number; error: () => Error };
}

/** What one statement of runAll gave: its rows (a SELECT) or its changed-row count. */
export type StmtResult = { rows: Record<string, unknown>[]; changed: number };

/**
 * Runs statements in order, in the caller's transaction. On MySQL/MariaDB they go as ONE
 * multi-statement query: one round trip instead of one each. That is the cost that matters on the
 * hot paths: mysql2's socket writes were 10–14 % of the service's CPU under bench:reserve and
 * bench:sweep (65–170 µs per statement sent, profile time over statements counted) and, after a guarded UPDATE of a hot
 * row, holds that row's lock one round trip longer. The server stops at the first statement that
 * fails and the whole call throws; guards are checked once every statement has run. On SQLite (in
 * process, no round trips) the statements run one after another.
 *
 * Hand-written rather than a library's: mysql2 sends a multi-statement query as is (the connection
 * has `multipleStatements`, every value still bound by `?`), but neither it nor TypeORM splits the
 * answer back per statement or checks changed-row counts.
 */
export async function runAll(m: EntityManager, stmts: Stmt[]): Promise<StmtResult[]> {
  const out: StmtResult[] = [];
  if (stmts.length === 0) return out;
  const own = !m.queryRunner;
  const qr = m.queryRunner ?? m.connection.createQueryRunner();
  try {
    if (!multiStatementsOn(m) || stmts.length === 1) {
      for (const st of stmts) out.push(resultOf(await qr.query(st.sql, st.params, true)));
    } else {
      const r = await qr.query(
        stmts.map((st) => st.sql).join(';\n'),
        stmts.flatMap((st) => st.params),
        true,
      );
      for (const raw of r.raw as unknown[]) out.push(resultOf({ raw }));
    }
  } finally {
    if (own) await qr.release();
  }
  stmts.forEach((st, i) => {
    if (st.guard && out[i].changed !== st.guard.rows) throw st.guard.error();
  });
  return out;
}

/**
 * runAll as the last step of a `db.tx` transaction, with its COMMIT in the same round trip: a batch
 * that locked rows holds them one round trip (and one turn of the event loop) less. The guards are
 * then checked by the server, each right after its statement: `SELECT (SELECT 1 UNION ALL SELECT 2
 * FROM DUAL WHERE ROW_COUNT() <> n)` returns two rows for a scalar when the statement did not change
 * exactly n rows, which fails the packet (error 1242) before the COMMIT is reached; the caller's
 * transaction then rolls back and the guard's error is thrown. MySQL/MariaDB with multi-statements
 * only, and not on Galera (below); elsewhere (SQLite, a manager outside a transaction) this is runAll
 * and db.tx commits.
 * Nothing may run in the transaction after it.
 *
 * Hand-written: neither MySQL nor MariaDB has a portable way to abort a multi-statement packet on a
 * changed-row count (SIGNAL needs a stored program, MariaDB's anonymous blocks are not in MySQL).
 */
export async function runAllAndCommit(m: EntityManager, stmts: Stmt[]): Promise<StmtResult[]> {
  // Error 1242 (a scalar subquery gave more than one row) is how a guard fails below; a statement with a
  // subquery of its own could fail the same way and be taken for a guard, so none is accepted (on either
  // database: the contract is the call's).
  const sub = stmts.find((st) => /\(\s*select\b/i.test(st.sql)); // a subquery is always in parentheses
  if (sub) throw new Error(`runAllAndCommit takes no statement with a subquery: ${sub.sql.slice(0, 80)}`);
  const qr = m.queryRunner;
  // Not on Galera: there a COMMIT sent at the end of a multi-statement packet can answer OK for a transaction
  // that certification threw away (MariaDB 10.11 with galera-4, `node dist/bench/galera-commit.js`: the
  // caller would answer for writes that never happened). A COMMIT of its own reports the failure (1213).
  if (!qr || !qr.isTransactionActive || !multiStatementsOn(m) || galeraSources.has(m.connection) || stmts.length === 0)
    return runAll(m, stmts);
  const sql: string[] = [];
  const params: unknown[] = [];
  const at: number[] = []; // where each statement's answer is among the packet's
  for (const st of stmts) {
    at.push(sql.length);
    sql.push(st.sql);
    for (const p of st.params) params.push(p); // not push(...): a batch's INSERT binds thousands
    if (st.guard) {
      sql.push('SELECT (SELECT 1 UNION ALL SELECT 2 FROM DUAL WHERE ROW_COUNT() <> ?) AS guard');
      params.push(st.guard.rows);
    }
  }
  sql.push('COMMIT');
  let r;
  try {
    r = await qr.query(sql.join(';\n'), params, true);
  } catch (err) {
    const guarded = stmts.find((st) => st.guard);
    if ((err as { errno?: number }).errno === 1242 && guarded) throw guarded.guard!.error();
    throw err;
  }
  const state = qr as unknown as { isTransactionActive: boolean; transactionDepth: number };
  state.isTransactionActive = false;
  state.transactionDepth = 0;
  const raw = r.raw as unknown[];
  return at.map((i) => resultOf({ raw: raw[i] }));
}

function multiStatementsOn(m: EntityManager): boolean {
  const o = m.connection.options;
  return o.type === 'mysql' && o.multipleStatements === true;
}

function resultOf(r: { raw: unknown; records?: unknown[]; affected?: number | null }): StmtResult {
  const raw = r.raw as { affectedRows?: number } | Record<string, unknown>[] | undefined;
  if (Array.isArray(raw)) return { rows: raw, changed: 0 };
  // mysql2: a ResultSetHeader; better-sqlite3 through TypeORM: records for a read, affected for a write.
  if (raw && typeof raw === 'object' && 'affectedRows' in raw) return { rows: [], changed: Number(raw.affectedRows) };
  return { rows: (r.records as Record<string, unknown>[] | undefined) ?? [], changed: r.affected ?? 0 };
}

/** `?, ?, ?` for an IN list. */
export const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');
