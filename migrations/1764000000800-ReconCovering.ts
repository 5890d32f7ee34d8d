import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/**
 * Reconciliation's "ours" side asks, for each of the day's payments, whether any line of the
 * window's runs settled it (an anti-join on recon_item by payment). With the index on payment_id
 * alone every probe also read the item row itself, at random; this index answers it from the index
 * (payment_id, run_id, line_no, txn_type) and replaces the narrower one.
 */
export class ReconCovering1764000000800 implements MigrationInterface {
  name = 'ReconCovering1764000000800';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createIndex(
      'recon_item',
      new TableIndex({
        name: 'ix_recon_item_payment_run',
        columnNames: ['payment_id', 'run_id', 'line_no', 'txn_type'],
      }),
    );
    await qr.dropIndex('recon_item', 'ix_recon_item_payment');
  }

  async down(qr: QueryRunner): Promise<void> {
    await qr.createIndex('recon_item', new TableIndex({ name: 'ix_recon_item_payment', columnNames: ['payment_id'] }));
    await qr.dropIndex('recon_item', 'ix_recon_item_payment_run');
  }
}
