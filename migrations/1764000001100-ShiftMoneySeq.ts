import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `shift.money_seq`: on Galera, a transaction that confirms money on a lane adds one to its open
 * shift's counter, so that the sale and a close of that shift on another node write the same row and
 * cannot both commit (shift-lock.ts). A share lock there would be local to its node and order nothing.
 */
export class ShiftMoneySeq1764000001100 implements MigrationInterface {
  name = 'ShiftMoneySeq1764000001100';

  async up(qr: QueryRunner): Promise<void> {
    // Plain SQL: both databases add the column in place (TypeORM would rebuild the SQLite table).
    await qr.query('ALTER TABLE shift ADD COLUMN money_seq BIGINT NOT NULL DEFAULT 0');
  }

  async down(qr: QueryRunner): Promise<void> {
    await qr.query('ALTER TABLE shift DROP COLUMN money_seq');
  }
}
