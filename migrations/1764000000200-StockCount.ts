import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { big, serialId, str } from './columns';

/**
 * Stock counts (盘点): a count session, one line per SKU in scope with what the system expected
 * and what was counted, and every counted figure ever entered (a later count replaces the earlier
 * one on the line; both stay here).
 */
export class StockCount1764000000200 implements MigrationInterface {
  name = 'StockCount1764000000200';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createTable(
      new Table({
        name: 'stock_count',
        columns: [
          { ...str('id', 36), isPrimary: true },
          str('status', 12),
          str('scope', 8),
          big('skus'),
          str('created_by', 64),
          big('created_at'),
          big('updated_at'),
          str('ended_by', 64, true),
          big('ended_at', true),
        ],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'stock_count_line',
        columns: [
          { ...str('count_id', 36), isPrimary: true },
          { ...str('sku', 64), isPrimary: true },
          big('expected_at_open'),
          big('counted', true),
          big('on_hand_at_count', true),
          big('counted_at', true),
          str('counted_by', 64, true),
          big('posted_delta', true),
        ],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'stock_count_entry',
        columns: [
          serialId(qr),
          str('count_id', 36),
          str('upload_id', 36),
          { name: 'line_no', type: 'int' },
          str('sku', 64),
          big('counted'),
          str('counted_by', 64),
          big('at'),
        ],
        indices: [
          { name: 'ix_count_entry', columnNames: ['count_id', 'sku'] },
          { name: 'ix_count_entry_upload', columnNames: ['upload_id'] },
        ],
      }),
    );
  }

  async down(qr: QueryRunner): Promise<void> {
    for (const t of ['stock_count_entry', 'stock_count_line', 'stock_count']) await qr.dropTable(t, true);
  }
}
