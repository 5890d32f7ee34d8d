import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';
import { big, serialId, str, text } from './columns';

/**
 * T+1 reconciliation (对账): a run per settle day and file (re-runs kept, one `latest`), one item
 * per file line or per payment of ours the file lacks, resolutions keyed so they outlive re-runs,
 * and the ledger that lets an automatic action happen once ever.
 */
export class Reconciliation1764000000500 implements MigrationInterface {
  name = 'Reconciliation1764000000500';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createTable(
      new Table({
        name: 'recon_run',
        columns: [
          { ...str('id', 36), isPrimary: true },
          str('settle_date', 10),
          str('mer_id', 15, true),
          str('status', 12),
          str('source', 12),
          big('latest', false, 0),
          str('file_name', 128, true),
          str('file_sha256', 64, true),
          big('file_lines', true),
          big('total_count', true),
          big('total_amount_fen', true),
          big('total_fee_fen', true),
          big('total_net_fen', true),
          big('n_matched', false, 0),
          big('n_amount_mismatch', false, 0),
          big('n_acquirer_only', false, 0),
          big('n_ours_only', false, 0),
          big('n_pending_cutoff', false, 0),
          text('problem'),
          big('attempts', false, 0),
          big('next_try_at', true),
          big('claim_until', true),
          str('created_by', 64),
          big('created_at'),
          big('updated_at'),
          big('finished_at', true),
        ],
        indices: [
          { name: 'ix_recon_run_day', columnNames: ['settle_date', 'created_at'] },
          { name: 'ix_recon_run_status', columnNames: ['status', 'next_try_at'] },
        ],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'recon_item',
        columns: [
          serialId(qr),
          str('run_id', 36),
          str('settle_date', 10),
          str('class', 16),
          str('item_key', 96),
          big('line_no', true),
          str('rf', 32, true),
          str('payment_id', 36, true),
          str('our_status', 24, true),
          big('our_amount_fen', true),
          big('acquirer_amount_fen', true),
          str('txn_type', 2, true),
          str('query_id', 32, true),
          str('orig_query_id', 32, true),
          str('trace_no', 6, true),
          str('terminal_id', 8, true),
          str('txn_time', 10, true),
          str('action', 16, true),
          str('action_state', 12, true),
          str('note', 255, true),
        ],
        indices: [
          { name: 'ix_recon_item_run', columnNames: ['run_id', 'class', 'id'] },
          { name: 'ix_recon_item_payment', columnNames: ['payment_id'] },
        ],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'recon_resolution',
        columns: [
          { ...str('item_key', 96), isPrimary: true },
          str('action', 16),
          text('note'),
          big('item_id'),
          str('resolved_by', 64),
          big('resolved_at'),
        ],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'recon_action',
        columns: [
          { ...str('payment_id', 36), isPrimary: true },
          { ...str('action', 16), isPrimary: true },
          str('from_status', 16),
          str('run_id', 36),
          big('item_id'),
          str('state', 12),
          text('outcome'),
          big('at'),
        ],
      }),
    );
    // The file is matched to payments by terminal + trace, and a settle day's payments are found by attempt time.
    await qr.createIndex(
      'payment',
      new TableIndex({ name: 'ix_payment_terminal_trace', columnNames: ['terminal_id', 'trace_no'] }),
    );
    await qr.createIndex('payment', new TableIndex({ name: 'ix_payment_txn_time', columnNames: ['txn_time'] }));
    await qr.createIndex('payment', new TableIndex({ name: 'ix_payment_settle_date', columnNames: ['settle_date'] }));
    await qr.createIndex('payment', new TableIndex({ name: 'ix_payment_query_id', columnNames: ['query_id'] }));
  }

  async down(qr: QueryRunner): Promise<void> {
    for (const i of [
      'ix_payment_terminal_trace',
      'ix_payment_txn_time',
      'ix_payment_settle_date',
      'ix_payment_query_id',
    ])
      await qr.dropIndex('payment', i);
    for (const t of ['recon_action', 'recon_resolution', 'recon_item', 'recon_run']) await qr.dropTable(t, true);
  }
}
