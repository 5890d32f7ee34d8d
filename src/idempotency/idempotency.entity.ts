import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/columns';

/** The first answer to a creating POST, replayed for the same key and body. status 0 = in progress. */
@Entity('idempotency_key')
export class IdempotencyRecord {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  principal: string;

  @PrimaryColumn({ name: 'idem_key', type: 'varchar', length: 128 })
  key: string;

  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash: string;

  @Column({ name: 'status_code', type: 'int' })
  statusCode: number;

  @Column({ name: 'response_json', type: 'text', nullable: true })
  responseJson: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintAsNumber })
  createdAt: number;

  /** The last time the request that holds the claim said it is still working (migrations/…900). */
  @Column({ name: 'renewed_at', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  renewedAt: number | null;
}
