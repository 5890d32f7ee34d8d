import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/columns';

/**
 * An order line is also its reservation: `active` while the stock is held, then it ends exactly
 * once, as `sold` or `released` (a conditional UPDATE … WHERE reservation = 'active').
 */
export type ReservationState = 'active' | 'sold' | 'released';

@Entity('order_line')
export class OrderLine {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'order_id', type: 'varchar', length: 36 })
  orderId: string;

  @Column({ name: 'line_no', type: 'int' })
  lineNo: number;

  @Column({ type: 'varchar', length: 64 })
  sku: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  qty: number;

  @Column({ name: 'unit_price_fen', type: 'bigint', transformer: bigintAsNumber })
  unitPriceFen: number;

  /** The catalogue price when a supervisor overrode it (unitPriceFen is then the override). */
  @Column({ name: 'list_price_fen', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  listPriceFen: number | null;

  /** This line's share of the order discount, whole fen. netFen = qty × unitPriceFen − discountFen. */
  @Column({ name: 'discount_fen', type: 'bigint', default: 0, transformer: bigintAsNumber })
  discountFen: number;

  /** Units returned so far; only grows, by a conditional UPDATE that keeps it ≤ qty. */
  @Column({ name: 'returned_qty', type: 'bigint', default: 0, transformer: bigintAsNumber })
  returnedQty: number;

  @Column({ type: 'varchar', length: 12 })
  reservation: ReservationState;

  @Column({ name: 'ended_at', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  endedAt: number | null;
}
