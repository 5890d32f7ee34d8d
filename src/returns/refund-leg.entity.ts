import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber, boolAsNumber } from '../db/columns';

/**
 * queued: stored with its RF, not on the line yet (terminal busy or away) · pending: at the terminal ·
 * approved: the money went back · failed: confirmed not refunded (declined, nothing to refund against) ·
 * unknown: no final answer, settled by the sweep under the same RF · paid_in_cash: a failed card leg
 * a cashier paid out in cash instead.
 */
export type LegStatus = 'queued' | 'pending' | 'approved' | 'failed' | 'unknown' | 'paid_in_cash';
export type LegVia = 'cash' | 'V0' | 'R0' | 'none';

@Entity('refund_leg')
export class RefundLeg {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'return_id', type: 'varchar', length: 36 })
  returnId: string;

  @Column({ name: 'order_id', type: 'varchar', length: 36 })
  orderId: string;

  /** The approved tender this leg gives money back to. */
  @Column({ name: 'payment_id', type: 'varchar', length: 36 })
  paymentId: string;

  @Column({ type: 'int' })
  seq: number;

  @Column({ type: 'varchar', length: 8 })
  method: 'cash' | 'card';

  @Column({ name: 'amount_fen', type: 'bigint', transformer: bigintAsNumber })
  amountFen: number;

  @Column({ type: 'varchar', length: 16 })
  status: LegStatus;

  @Column({ type: 'varchar', length: 8, nullable: true })
  via: LegVia | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  lane: string | null;

  /** The leg's own ECR reference: chosen once, before the first byte; never replaced. */
  @Column({ type: 'varchar', length: 32, nullable: true, unique: true })
  rf: string | null;

  @Column({ name: 'txn_time', type: 'varchar', length: 14, nullable: true })
  txnTime: string | null;

  @Column({ type: 'tinyint', default: 0, transformer: boolAsNumber })
  acked: boolean;

  @Column({ type: 'varchar', length: 4, nullable: true })
  rc: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  rm: string | null;

  @Column({ type: 'varchar', length: 255, nullable: true })
  reason: string | null;

  /** The terminal's TN and RR of the void/refund itself. */
  @Column({ name: 'trace_no', type: 'varchar', length: 6, nullable: true })
  traceNo: string | null;

  @Column({ type: 'varchar', length: 12, nullable: true })
  rrn: string | null;

  @Column({ name: 'next_check_at', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  nextCheckAt: number | null;

  @Column({ type: 'int', default: 0 })
  checks: number;

  @Column({ name: 'claim_until', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  claimUntil: number | null;

  @Column({ name: 'resolved_by', type: 'varchar', length: 64, nullable: true })
  resolvedBy: string | null;

  @Column({ type: 'text', nullable: true })
  note: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintAsNumber })
  createdAt: number;

  @Column({ name: 'updated_at', type: 'bigint', transformer: bigintAsNumber })
  updatedAt: number;

  @Column({ name: 'finished_at', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  finishedAt: number | null;
}
