import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber, boolAsNumber } from '../db/columns';

/** `return`: goods brought back from a paid order. `cancel`: a part-paid order called off; its tenders go back. */
export type ReturnKind = 'return' | 'cancel';

@Entity('order_return')
export class OrderReturn {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'order_id', type: 'varchar', length: 36 })
  orderId: string;

  @Column({ type: 'varchar', length: 8 })
  kind: ReturnKind;

  /** Σ of its lines' refunds (a cancel: Σ of what the tenders had paid); Σ of its legs. */
  @Column({ name: 'refund_fen', type: 'bigint', transformer: bigintAsNumber })
  refundFen: number;

  @Column({ type: 'tinyint', default: 1, transformer: boolAsNumber })
  restock: boolean;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  @Column({ name: 'created_by', type: 'varchar', length: 64 })
  createdBy: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintAsNumber })
  createdAt: number;
}

/** Units [firstUnit, firstUnit + qty) of an order line, and what they refund. */
@Entity('return_line')
export class ReturnLine {
  @PrimaryColumn({ name: 'return_id', type: 'varchar', length: 36 })
  returnId: string;

  @PrimaryColumn({ name: 'line_no', type: 'int' })
  lineNo: number;

  @Column({ name: 'order_line_id', type: 'varchar', length: 36 })
  orderLineId: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  qty: number;

  @Column({ name: 'first_unit', type: 'bigint', transformer: bigintAsNumber })
  firstUnit: number;

  @Column({ name: 'refund_fen', type: 'bigint', transformer: bigintAsNumber })
  refundFen: number;
}
