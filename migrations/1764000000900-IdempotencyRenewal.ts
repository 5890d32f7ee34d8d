import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { big } from './columns';

/**
 * A keyed request that runs longer than its lease (a return whose card legs wait at the terminal, up
 * to TERMINAL_T_RESP_MS each) renews it while it works: `renewed_at`, written by the request's own
 * process. A retry takes a key over only when neither the claim nor its last renewal is within the
 * lease. `created_at` stays the claim's identity, which every conditional write of the request names.
 */
export class IdempotencyRenewal1764000000900 implements MigrationInterface {
  name = 'IdempotencyRenewal1764000000900';

  async up(qr: QueryRunner): Promise<void> {
    await qr.addColumn('idempotency_key', new TableColumn(big('renewed_at', true)));
  }

  async down(qr: QueryRunner): Promise<void> {
    await qr.dropColumn('idempotency_key', 'renewed_at');
  }
}
