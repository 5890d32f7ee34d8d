import { MigrationInterface, QueryRunner, Table } from 'typeorm';
import { big, str } from './columns';

/**
 * The acquirer's request for quiet (respCode 37, queries too frequent), shared by every instance's
 * sweeper: one row, the window [quiet_from, quiet_until) the last instance told of it wrote. Before, each
 * instance learned it from its own 37 and the others went on asking into the same refusal.
 */
export class AcquirerQuiet1764000001000 implements MigrationInterface {
  name = 'AcquirerQuiet1764000001000';

  async up(qr: QueryRunner): Promise<void> {
    await qr.createTable(
      new Table({
        name: 'acquirer_quiet',
        columns: [
          { ...str('id', 16), isPrimary: true },
          big('quiet_from', false, 0),
          big('quiet_until', false, 0),
          str('by_instance', 64),
          big('updated_at', false, 0),
        ],
      }),
    );
    await qr.query(
      "INSERT INTO acquirer_quiet (id, quiet_from, quiet_until, by_instance, updated_at) VALUES ('acquirer', 0, 0, '', 0)",
    );
  }

  async down(qr: QueryRunner): Promise<void> {
    await qr.dropTable('acquirer_quiet');
  }
}
