import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/columns';

export type OrderStatus = 'reserved' | 'paid' | 'cancelled' | 'expired';
export type OrderKind = 'goods' | 'seats';

@Entity('orders')
export class Order {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 64 })
  lane: string;

  @Column({ type: 'varchar', length: 8, default: 'goods' })
  kind: OrderKind;

  @Column({ name: 'event_id', type: 'varchar', length: 64, nullable: true })
  eventId: string | null;

  @Column({ type: 'varchar', length: 16 })
  status: OrderStatus;

  @Column({ name: 'total_fen', type: 'bigint', transformer: bigintAsNumber })
  totalFen: number;

  /** Σ approved tenders. */
  @Column({ name: 'paid_fen', type: 'bigint', default: 0, transformer: bigintAsNumber })
  paidFen: number;

  /** A card approval found after the order was paid by another tender; its refund is queued. */
  @Column({ name: 'overpaid_fen', type: 'bigint', default: 0, transformer: bigintAsNumber })
  overpaidFen: number;

  @Column({ name: 'expires_at', type: 'bigint', transformer: bigintAsNumber })
  expiresAt: number;

  @Column({ name: 'created_by', type: 'varchar', length: 64 })
  createdBy: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintAsNumber })
  createdAt: number;

  @Column({ name: 'updated_at', type: 'bigint', transformer: bigintAsNumber })
  updatedAt: number;

  @Column({ type: 'int', default: 0 })
  version: number;
}
