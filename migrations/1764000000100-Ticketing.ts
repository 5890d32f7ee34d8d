import { MigrationInterface, QueryRunner } from 'typeorm';

export class Ticketing1764000000100 implements MigrationInterface {
  name = 'Ticketing1764000000100';

  async up(_qr: QueryRunner): Promise<void> {}

  async down(_qr: QueryRunner): Promise<void> {}
}
