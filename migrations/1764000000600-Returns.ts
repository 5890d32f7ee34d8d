import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { big, str, text, uuid } from './columns';

/**
 * Coupons, discounts that split exactly, returns and their refund legs. Orders and lines gain the
 * columns a discounted, returnable sale needs; old rows read as "no discount, nothing returned".
 */
export class Returns1764000000600 implements MigrationInterface {
  name = 'Returns1764000000600';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createTable(
      new Table({
        name: 'coupon',
        columns: [
          { ...str('code', 64), isPrimary: true },
          str('kind', 16),
          big('amount_fen', true),
          big('percent_bp', true),
          big('min_subtotal_fen', true),
          text('skus'),
          big('valid_from', true),
          big('valid_to', true),
          big('max_uses', true),
          big('used', false, 0),
          big('reserved', false, 0),
          str('created_by', 64),
          big('created_at'),
          big('updated_at'),
        ],
      }),
    );
    // Plain SQL: both databases add a column in place (TypeORM would rebuild the SQLite tables, order_line is the big one).
    for (const c of ['subtotal_fen', 'discount_fen', 'rounding_fen', 'refunded_fen'])
      await qr.query(`ALTER TABLE orders ADD COLUMN ${c} BIGINT NOT NULL DEFAULT 0`);
    await qr.query('ALTER TABLE orders ADD COLUMN coupon_code VARCHAR(64) NULL');
    await qr.query('ALTER TABLE orders ADD COLUMN coupon_use VARCHAR(12) NULL');
    await qr.query('UPDATE orders SET subtotal_fen = total_fen');
    for (const c of ['discount_fen', 'returned_qty'])
      await qr.query(`ALTER TABLE order_line ADD COLUMN ${c} BIGINT NOT NULL DEFAULT 0`);
    await qr.query('ALTER TABLE order_line ADD COLUMN list_price_fen BIGINT NULL');
    await qr.createTable(
      new Table({
        name: 'order_return',
        columns: [
          { ...uuid('id'), isPrimary: true },
          uuid('order_id'),
          str('kind', 8),
          big('refund_fen'),
          { name: 'restock', type: 'tinyint', default: 1 },
          text('reason'),
          str('created_by', 64),
          big('created_at'),
        ],
        indices: [{ name: 'ix_return_order', columnNames: ['order_id'] }],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'return_line',
        columns: [
          { ...uuid('return_id'), isPrimary: true },
          { name: 'line_no', type: 'int', isPrimary: true },
          uuid('order_line_id'),
          big('qty'),
          big('first_unit'),
          big('refund_fen'),
        ],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'refund_leg',
        columns: [
          { ...uuid('id'), isPrimary: true },
          uuid('return_id'),
          uuid('order_id'),
          uuid('payment_id'),
          { name: 'seq', type: 'int' },
          str('method', 8),
          big('amount_fen'),
          str('status', 16),
          str('via', 8, true),
          str('lane', 64, true),
          { ...str('rf', 32, true), isUnique: true },
          str('txn_time', 14, true),
          { name: 'acked', type: 'tinyint', default: 0 },
          str('rc', 4, true),
          str('rm', 128, true),
          str('reason', 255, true),
          str('trace_no', 6, true),
          str('rrn', 12, true),
          big('next_check_at', true),
          { name: 'checks', type: 'int', default: 0 },
          big('claim_until', true),
          str('resolved_by', 64, true),
          text('note'),
          big('created_at'),
          big('updated_at'),
          big('finished_at', true),
        ],
        indices: [
          { name: 'ix_leg_return', columnNames: ['return_id'] },
          { name: 'ix_leg_payment', columnNames: ['payment_id'] },
          { name: 'ix_leg_status_due', columnNames: ['status', 'next_check_at'] },
        ],
      }),
    );
  }

  async down(qr: QueryRunner): Promise<void> {
    for (const t of ['refund_leg', 'return_line', 'order_return', 'coupon']) await qr.dropTable(t, true);
    for (const c of ['discount_fen', 'returned_qty', 'list_price_fen'])
      await qr.query(`ALTER TABLE order_line DROP COLUMN ${c}`);
    for (const c of ['subtotal_fen', 'discount_fen', 'rounding_fen', 'refunded_fen', 'coupon_code', 'coupon_use'])
      await qr.query(`ALTER TABLE orders DROP COLUMN ${c}`);
  }
}
