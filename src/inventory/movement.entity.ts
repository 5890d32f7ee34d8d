import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { bigintAsNumber } from '../db/columns';

/**
 * The append-only stock ledger. Every change of a SKU's onHand or reserved is one row here,
 * written in the same transaction: onHand = Σ onHandDelta, reserved = Σ reservedDelta.
 */
export type MovementKind = 'receipt' | 'reservation' | 'release' | 'sale' | 'adjustment' | 'return' | 'damaged';
// `return`: sold units brought back to the shelf (on hand rises). `damaged`: sold units brought back
// unfit to sell; recorded (ref = the return) but on hand does not rise.

@Entity('stock_movement')
export class StockMovement {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ type: 'varchar', length: 64 })
  sku: string;

  @Column({ type: 'varchar', length: 16 })
  kind: MovementKind;

  @Column({ name: 'on_hand_delta', type: 'bigint', transformer: bigintAsNumber })
  onHandDelta: number;

  @Column({ name: 'reserved_delta', type: 'bigint', transformer: bigintAsNumber })
  reservedDelta: number;

  @Column({ name: 'order_id', type: 'varchar', length: 36, nullable: true })
  orderId: string | null;

  @Column({ name: 'order_line_id', type: 'varchar', length: 36, nullable: true })
  orderLineId: string | null;

  /** What caused it besides an order: a receipt id, a stock count id. */
  @Column({ type: 'varchar', length: 64, nullable: true })
  ref: string | null;

  @Column({ type: 'varchar', length: 64 })
  actor: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  at: number;
}
