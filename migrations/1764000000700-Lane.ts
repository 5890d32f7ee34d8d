import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { big, str, text, uuid } from './columns';

/**
 * The lane (issue 13): the receipt print queue, shifts (交班) and an optional EAN-13 barcode per SKU.
 * `shift.open_lane` is the lane while the shift is open and NULL once closed: its unique index lets
 * a lane have at most one open shift, whatever two tills race to do.
 */
export class Lane1764000000700 implements MigrationInterface {
  name = 'Lane1764000000700';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createTable(
      new Table({
        name: 'print_job',
        columns: [
          { ...uuid('id'), isPrimary: true },
          str('lane', 64),
          str('kind', 16),
          uuid('order_id', true),
          uuid('shift_id', true),
          str('drawer', 8, true),
          str('status', 12),
          big('attempts', false, 0),
          str('last_error', 255, true),
          str('claimed_by', 64, true),
          big('claim_until', true),
          big('next_try_at'),
          str('created_by', 64),
          big('created_at'),
          big('printed_at', true),
        ],
        indices: [
          { name: 'ix_print_job_due', columnNames: ['status', 'next_try_at'] },
          { name: 'ix_print_job_lane', columnNames: ['lane', 'status'] },
          { name: 'ix_print_job_order', columnNames: ['order_id'] },
        ],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'shift',
        columns: [
          { ...uuid('id'), isPrimary: true },
          str('lane', 64),
          { ...str('open_lane', 64, true), isUnique: true },
          str('status', 8),
          big('float_fen'),
          big('counted_cash_fen', true),
          str('opened_by', 64),
          big('opened_at'),
          str('closed_by', 64, true),
          big('closed_at', true),
          text('z_report'),
        ],
        indices: [
          { name: 'ix_shift_lane', columnNames: ['lane', 'opened_at'] },
          { name: 'ix_shift_opened', columnNames: ['opened_at'] },
        ],
      }),
    );
    // Plain SQL: both databases add a nullable column in place (TypeORM would rebuild the SQLite table).
    await qr.query('ALTER TABLE sku ADD COLUMN barcode VARCHAR(14) NULL');
    await qr.query('CREATE UNIQUE INDEX ux_sku_barcode ON sku (barcode)');
  }

  async down(qr: QueryRunner): Promise<void> {
    await qr.query('DROP INDEX ux_sku_barcode ON sku').catch(() => qr.query('DROP INDEX ux_sku_barcode'));
    await qr.query('ALTER TABLE sku DROP COLUMN barcode');
    for (const t of ['shift', 'print_job']) await qr.dropTable(t, true);
  }
}
