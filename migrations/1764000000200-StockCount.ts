import { MigrationInterface, QueryRunner } from 'typeorm';

export class StockCount1764000000200 implements MigrationInterface {
  name = 'StockCount1764000000200';

  async up(_qr: QueryRunner): Promise<void> {}

  async down(_qr: QueryRunner): Promise<void> {}
}
