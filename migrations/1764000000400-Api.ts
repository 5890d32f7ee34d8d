import { MigrationInterface, QueryRunner, Table, TableColumn } from 'typeorm';
import { big, createUtf8Table, isMysql, str, uuid } from './columns';

/**
 * 1. utf8mb4 for every table on MySQL/MariaDB: the database default and each existing table, so a
 *    server started with latin1 defaults stores the terminal's Chinese prompts (and new tables made
 *    by later migrations inherit utf8mb4 even if they forget `createUtf8Table`).
 * 2. A stock count remembers, per counted SKU, what was off the shelf but still on the books when it
 *    was counted (active reservations: carts at a till, goods with a customer whose card is unknown),
 *    so approval can account for what settled since exactly once (see stock-count.service.ts).
 */
export class Api1764000000400 implements MigrationInterface {
  name = 'Api1764000000400';

  async up(qr: QueryRunner): Promise<void> {
    if (isMysql(qr)) {
      await qr.query('ALTER DATABASE CHARACTER SET utf8mb4');
      const tables: { name: string }[] = await qr.query(
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_COLLATION NOT LIKE 'utf8mb4%'",
      );
      for (const t of tables) await qr.query(`ALTER TABLE \`${t.name}\` CONVERT TO CHARACTER SET utf8mb4`);
    }
    await qr.addColumn('stock_count_line', new TableColumn(big('held_at_count', true)));
    await createUtf8Table(
      qr,
      new Table({
        name: 'stock_count_hold',
        columns: [
          { ...str('count_id', 36), isPrimary: true },
          { ...uuid('order_line_id'), isPrimary: true },
          str('sku', 64),
          uuid('order_id'),
          big('qty'),
        ],
        indices: [{ name: 'ix_count_hold_sku', columnNames: ['count_id', 'sku'] }],
      }),
    );
  }

  async down(qr: QueryRunner): Promise<void> {
    await qr.dropTable('stock_count_hold', true);
    await qr.dropColumn('stock_count_line', 'held_at_count');
  }
}
