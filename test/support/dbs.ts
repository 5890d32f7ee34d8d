import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Db } from '../../src/db/db';
import '../../src/capabilities'; // the entities every suite's database maps

/**
 * The databases every integration suite runs on. MySQL/MariaDB comes from TEST_DATABASE_URL
 * (scripts/test.js probes it and sets POS_TEST_MYSQL=skip when it is unreachable outside CI).
 */
export interface TestDbKind {
  name: 'sqlite' | 'mysql';
}

export function testDbKinds(): TestDbKind[] {
  const kinds: TestDbKind[] = [{ name: 'sqlite' }];
  if (process.env.POS_TEST_MYSQL !== 'skip') kinds.push({ name: 'mysql' });
  return kinds;
}

export const mysqlBaseUrl = () => process.env.TEST_DATABASE_URL || 'mysql://root@127.0.0.1:3306/test';

export interface FreshDb {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A new, migrated, empty database: a temp SQLite file, or a new MySQL schema dropped afterwards. */
export async function freshDb(kind: TestDbKind['name'], opts: { poolSize?: number } = {}): Promise<FreshDb> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'pos-test-'));
    const url = `sqlite:${join(dir, 'pos.db')}`;
    const db = await Db.fromUrl(url).open({ migrate: true });
    return {
      url,
      db,
      drop: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const base = new URL(mysqlBaseUrl());
  const name = `pos_t_${randomBytes(5).toString('hex')}`;
  const admin = await Db.fromUrl(base.toString(), { poolSize: 1 }).open();
  await admin.ds.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
  await admin.close();
  base.pathname = `/${name}`;
  const url = base.toString();
  const db = await Db.fromUrl(url, opts).open({ migrate: true });
  return {
    url,
    db,
    drop: async () => {
      await db.close();
      const a = await Db.fromUrl(mysqlBaseUrl(), { poolSize: 1 }).open();
      await a.ds.query(`DROP DATABASE IF EXISTS ${name}`);
      await a.close();
    },
  };
}
