import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { big, serialId, str, text, uuid } from './columns';

export class Foundation1764000000000 implements MigrationInterface {
  name = 'Foundation1764000000000';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createTable(
      new Table({
        name: 'api_key',
        columns: [
          { ...uuid('id'), isPrimary: true },
          str('role', 16),
          str('lane', 64, true),
          { ...str('key_hash', 64), isUnique: true },
          big('created_at'),
          big('revoked_at', true),
        ],
      }),
    );

    await qr.createTable(
      new Table({
        name: 'sku',
        columns: [
          { ...str('sku', 64), isPrimary: true },
          str('name', 200),
          big('price_fen'),
          { ...str('kind', 8), default: "'goods'" },
          big('on_hand', false, 0),
          big('reserved', false, 0),
          big('created_at'),
          big('updated_at'),
        ],
        indices: [{ name: 'ix_sku_kind', columnNames: ['kind'] }],
      }),
    );

    await qr.createTable(
      new Table({
        name: 'stock_movement',
        columns: [
          serialId(qr),
          str('sku', 64),
          str('kind', 16),
          big('on_hand_delta'),
          big('reserved_delta'),
          uuid('order_id', true),
          uuid('order_line_id', true),
          str('ref', 64, true),
          str('actor', 64),
          big('at'),
        ],
        indices: [
          { name: 'ix_movement_sku', columnNames: ['sku', 'id'] },
          { name: 'ix_movement_line', columnNames: ['order_line_id'] },
        ],
      }),
    );

    await qr.createTable(
      new Table({
        name: 'orders',
        columns: [
          { ...uuid('id'), isPrimary: true },
          str('lane', 64),
          { ...str('kind', 8), default: "'goods'" },
          str('event_id', 64, true),
          str('status', 16),
          big('total_fen'),
          big('paid_fen', false, 0),
          big('overpaid_fen', false, 0),
          big('expires_at'),
          str('created_by', 64),
          big('created_at'),
          big('updated_at'),
          { name: 'version', type: 'int', default: 0 },
        ],
        indices: [{ name: 'ix_orders_status_expiry', columnNames: ['status', 'expires_at'] }],
      }),
    );

    await qr.createTable(
      new Table({
        name: 'order_line',
        columns: [
          { ...uuid('id'), isPrimary: true },
          uuid('order_id'),
          { name: 'line_no', type: 'int' },
          str('sku', 64),
          big('qty'),
          big('unit_price_fen'),
          str('reservation', 12),
          big('ended_at', true),
        ],
        indices: [
          { name: 'ix_line_order', columnNames: ['order_id'] },
          { name: 'ix_line_sku_reservation', columnNames: ['sku', 'reservation'] },
        ],
      }),
    );

    await qr.createTable(
      new Table({
        name: 'payment',
        columns: [
          { ...uuid('id'), isPrimary: true },
          uuid('order_id'),
          str('method', 8),
          big('amount_fen'),
          str('status', 16),
          str('lane', 64, true),
          { ...str('rf', 32, true), isUnique: true },
          str('txn_time', 14, true),
          { name: 'acked', type: 'tinyint', default: 0 },
          str('rc', 4, true),
          str('rm', 128, true),
          str('reason', 255, true),
          text('prompts'),
          str('card_masked', 32, true),
          str('card_type', 2, true),
          str('terminal_id', 8, true),
          str('merchant_id', 15, true),
          str('batch_no', 6, true),
          str('trace_no', 6, true),
          str('rrn', 12, true),
          str('auth_code', 6, true),
          str('terminal_time', 14, true),
          str('settle_date', 8, true),
          str('query_id', 32, true),
          big('next_check_at', true),
          { name: 'checks', type: 'int', default: 0 },
          big('unknown_since', true),
          str('reversal_state', 16, true),
          str('claimed_by', 64, true),
          big('claim_until', true),
          str('refund_state', 16, true),
          big('refund_fen', true),
          str('resolved_by', 64, true),
          text('resolution_note'),
          str('created_by', 64),
          big('created_at'),
          big('updated_at'),
          big('finished_at', true),
        ],
        indices: [
          { name: 'ix_payment_order', columnNames: ['order_id'] },
          { name: 'ix_payment_status_due', columnNames: ['status', 'next_check_at'] },
        ],
      }),
    );

    await qr.createTable(
      new Table({
        name: 'audit_log',
        columns: [
          serialId(qr),
          str('actor', 64),
          str('entity', 32),
          str('entity_id', 64),
          str('action', 40),
          text('before'),
          text('after'),
          big('at'),
        ],
        indices: [{ name: 'ix_audit_entity', columnNames: ['entity', 'entity_id'] }],
      }),
    );

    await qr.createTable(
      new Table({
        name: 'idempotency_key',
        columns: [
          { ...uuid('principal'), isPrimary: true },
          { ...str('idem_key', 128), isPrimary: true },
          str('request_hash', 64),
          { name: 'status_code', type: 'int' },
          text('response_json'),
          big('created_at'),
        ],
      }),
    );
  }

  async down(qr: QueryRunner): Promise<void> {
    for (const t of [
      'idempotency_key',
      'audit_log',
      'payment',
      'order_line',
      'orders',
      'stock_movement',
      'sku',
      'api_key',
    ]) {
      await qr.dropTable(t, true);
    }
  }
}
