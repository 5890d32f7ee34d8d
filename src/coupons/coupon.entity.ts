import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/columns';

export type CouponKind = 'amount_off' | 'percent_off';

/**
 * A coupon (卡券). With `maxUses` it is scarce like stock: `reserved` counts orders holding a use,
 * `used` orders that were paid with it; both change only by conditional UPDATEs.
 */
@Entity('coupon')
export class Coupon {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  code: string;

  @Column({ type: 'varchar', length: 16 })
  kind: CouponKind;

  @Column({ name: 'amount_fen', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  amountFen: number | null;

  /** Percent in basis points (15 % = 1500), so 12.5 % is exact. */
  @Column({ name: 'percent_bp', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  percentBp: number | null;

  @Column({ name: 'min_subtotal_fen', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  minSubtotalFen: number | null;

  /** JSON array of SKU codes the coupon applies to; null = every line. */
  @Column({ type: 'text', nullable: true })
  skus: string | null;

  @Column({ name: 'valid_from', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  validFrom: number | null;

  @Column({ name: 'valid_to', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  validTo: number | null;

  @Column({ name: 'max_uses', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  maxUses: number | null;

  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  used: number;

  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  reserved: number;

  @Column({ name: 'created_by', type: 'varchar', length: 64 })
  createdBy: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintAsNumber })
  createdAt: number;

  @Column({ name: 'updated_at', type: 'bigint', transformer: bigintAsNumber })
  updatedAt: number;
}
