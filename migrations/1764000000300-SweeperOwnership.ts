import { MigrationInterface, QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';
import { big, str, text } from './columns';

/**
 * Owners for every in-progress state (issue 10):
 * - lane_lease: one instance drives a lane's terminal at a time; a lease nobody renews means no live instance drives it;
 * - payment.terminal_reversal: the terminal holds a reversal of this sale (RC 98 or Q0 `P`), so an acquirer "approved" is not final;
 * - payment.evidence: verified answers that contradict a final status (status `disputed`);
 * - payment.refund_rf / refund_txn_time: the overpaid-card refund's own reference, stored before its first byte.
 */
export class SweeperOwnership1764000000300 implements MigrationInterface {
  name = 'SweeperOwnership1764000000300';

  async up(qr: QueryRunner): Promise<void> {
    const mysql = qr.connection.driver.options.type !== 'better-sqlite3';
    const utf8 = mysql ? { charset: 'utf8mb4' } : {};
    await qr.createTable(
      new Table({
        name: 'lane_lease',
        columns: [
          { ...str('lane', 64), isPrimary: true, ...utf8 },
          { ...str('instance_id', 64), ...utf8 },
          big('lease_until'),
          big('updated_at'),
        ],
      }),
    );
    if (mysql) await qr.query('ALTER TABLE lane_lease DEFAULT CHARACTER SET utf8mb4');
    await qr.addColumns('payment', [
      new TableColumn({ ...str('terminal_reversal', 16, true), ...utf8 }),
      new TableColumn({ ...text('evidence'), ...utf8 }),
      new TableColumn({ ...str('refund_rf', 32, true), ...utf8 }),
      new TableColumn({ ...str('refund_txn_time', 14, true), ...utf8 }),
    ]);
    // Cursor paging of GET /v1/payments walks (created_at, id); RF look-ups use the unique index on rf.
    await qr.createIndex('payment', new TableIndex({ name: 'ix_payment_created', columnNames: ['created_at', 'id'] }));
    await qr.createIndex('payment', new TableIndex({ name: 'ix_payment_refund_state', columnNames: ['refund_state'] }));
  }

  async down(qr: QueryRunner): Promise<void> {
    await qr.dropIndex('payment', 'ix_payment_refund_state');
    await qr.dropIndex('payment', 'ix_payment_created');
    for (const c of ['refund_txn_time', 'refund_rf', 'evidence', 'terminal_reversal'])
      await qr.dropColumn('payment', c);
    await qr.dropTable('lane_lease', true);
  }
}
