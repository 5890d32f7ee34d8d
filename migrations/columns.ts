import { QueryRunner, Table, TableColumnOptions } from 'typeorm';

/** Column shapes every migration uses, the same on SQLite and MySQL/MariaDB. */

/** SQLite wants INTEGER PRIMARY KEY for autoincrement; MySQL/MariaDB gets BIGINT. */
export function serialId(qr: QueryRunner): TableColumnOptions {
  const sqlite = qr.connection.driver.options.type === 'better-sqlite3';
  return {
    name: 'id',
    type: sqlite ? 'integer' : 'bigint',
    isPrimary: true,
    isGenerated: true,
    generationStrategy: 'increment',
  };
}

export const uuid = (name: string, nullable = false): TableColumnOptions => ({
  name,
  type: 'varchar',
  length: '36',
  isNullable: nullable,
});
export const str = (name: string, length: number, nullable = false): TableColumnOptions => ({
  name,
  type: 'varchar',
  length: String(length),
  isNullable: nullable,
});
export const big = (name: string, nullable = false, dflt?: number): TableColumnOptions => ({
  name,
  type: 'bigint',
  isNullable: nullable,
  default: dflt,
});
export const text = (name: string): TableColumnOptions => ({ name, type: 'text', isNullable: true });

/**
 * Creates a table that stores text as utf8mb4 on MySQL/MariaDB whatever the server's default is
 * (a server started without utf8mb4 defaults to latin1 and refuses the terminal's Chinese prompts).
 * Use it instead of `qr.createTable` for every new table.
 */
export async function createUtf8Table(qr: QueryRunner, table: Table): Promise<void> {
  await qr.createTable(table);
  if (isMysql(qr)) await qr.query(`ALTER TABLE \`${table.name}\` CONVERT TO CHARACTER SET utf8mb4`);
}

export const isMysql = (qr: QueryRunner): boolean =>
  qr.connection.driver.options.type === 'mysql' || qr.connection.driver.options.type === 'mariadb';
