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

  /** Σ line amounts at their prices, before any discount. */
  @Column({ name: 'subtotal_fen', type: 'bigint', default: 0, transformer: bigintAsNumber })
  subtotalFen: number;

  /** The coupon's discount; Σ line discounts equals it exactly. totalFen = subtotalFen − discountFen. */
  @Column({ name: 'discount_fen', type: 'bigint', default: 0, transformer: bigintAsNumber })
  discountFen: number;

  /** Fen dropped by cash rounding (抹零) when a cash-only payment was rounded down to the jiao. */
  @Column({ name: 'rounding_fen', type: 'bigint', default: 0, transformer: bigintAsNumber })
  roundingFen: number;

  /** Σ refunds of the order's returns and its cancellation (what was owed back; legs carry it). */
  @Column({ name: 'refunded_fen', type: 'bigint', default: 0, transformer: bigintAsNumber })
  refundedFen: number;

  @Column({ name: 'coupon_code', type: 'varchar', length: 64, nullable: true })
  couponCode: string | null;

  /** reserved → used (paid) or released (cancelled, expired): the order's hold on one coupon use. */
  @Column({ name: 'coupon_use', type: 'varchar', length: 12, nullable: true })
  couponUse: 'reserved' | 'used' | 'released' | null;

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
