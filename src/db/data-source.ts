import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { EntityClass, registeredEntities } from './registry';
import { migrations } from '../../migrations';

export type DbKind = 'sqlite' | 'mysql';

export function dbKindOf(url: string): DbKind {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) return 'mysql';
  throw new Error(`DATABASE_URL must be sqlite:PATH or mysql://user:pass@host:port/db, got "${url}"`);
}

export interface DataSourceOpts {
  poolSize?: number;
  entities?: EntityClass[];
}

export function dataSourceOptions(url: string, opts: DataSourceOpts = {}): DataSourceOptions {
  const entities = opts.entities ?? registeredEntities();
  if (dbKindOf(url) === 'sqlite') {
    const path = url.slice('sqlite:'.length) || './data/pos.db';
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    return {
      type: 'better-sqlite3',
      database: path,
      entities,
      migrations,
      // WAL lets readers (pos check, reports) run beside the writer; NORMAL is durable at checkpoints
      // and on every commit with WAL as far as a power cut goes for the committed-before-ack rule.
      prepareDatabase: (db: { pragma(s: string): unknown }) => {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('busy_timeout = 5000');
        db.pragma('foreign_keys = ON');
      },
    } as DataSourceOptions;
  }
  const u = new URL(url.replace(/^mariadb:/, 'mysql:'));
  return {
    type: 'mysql',
    connectorPackage: 'mysql2',
    host: u.hostname,
    port: Number(u.port || 3306),
    username: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password || ''),
    database: u.pathname.replace(/^\//, '') || 'test',
    entities,
    migrations,
    charset: 'utf8mb4',
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: true,
    poolSize: opts.poolSize ?? 20,
    // For db.runAll and a transaction's first statement: several statements in one round trip. Every
    // value is still bound by `?` (no SQL is built from input), which is what keeps this safe.
    // POS_DB_MULTI_STATEMENTS=off for a proxy in front of the database that refuses them.
    multipleStatements: process.env.POS_DB_MULTI_STATEMENTS !== 'off',
    extra: { connectionLimit: opts.poolSize ?? 20, maxIdle: opts.poolSize ?? 20 },
  };
}

export function makeDataSource(url: string, opts: DataSourceOpts = {}): DataSource {
  return new DataSource(dataSourceOptions(url, opts));
}
