import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { big, str } from './columns';

/** Events, their seats (each seat is a SKU of kind `seat` with one unit), and issued tickets. */
export class Ticketing1764000000100 implements MigrationInterface {
  name = 'Ticketing1764000000100';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createTable(
      new Table({
        name: 'event',
        columns: [{ ...str('id', 24), isPrimary: true }, str('name', 200), big('created_at')],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'event_seat',
        columns: [
          { ...str('event_id', 24), isPrimary: true },
          { ...str('seat_id', 32), isPrimary: true },
          str('section', 32),
          str('row_label', 16, true),
          { name: 'seat_no', type: 'int', isNullable: true },
          str('sku', 64),
        ],
        indices: [{ name: 'ix_seat_layout', columnNames: ['event_id', 'section', 'row_label', 'seat_no'] }],
        uniques: [{ name: 'uq_seat_sku', columnNames: ['sku'] }],
      }),
    );
    await qr.createTable(
      new Table({
        name: 'ticket',
        columns: [
          { ...str('code', 32), isPrimary: true },
          str('order_id', 36),
          str('event_id', 24),
          str('seat_id', 32),
          big('issued_at'),
        ],
        // One ticket per seat, ever: a second issue for the same seat fails in the database, not only in code.
        uniques: [{ name: 'uq_ticket_seat', columnNames: ['event_id', 'seat_id'] }],
        indices: [{ name: 'ix_ticket_order', columnNames: ['order_id'] }],
      }),
    );
  }

  async down(qr: QueryRunner): Promise<void> {
    for (const t of ['ticket', 'event_seat', 'event']) await qr.dropTable(t, true);
  }
}
