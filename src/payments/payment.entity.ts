import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber, boolAsNumber } from '../db/columns';

/**
 * One tender attempt. For a card it keeps what the terminal and the acquirer told us, and what
 * matching the acquirer's T+1 reconciliation file will need (RF, trace, RRN, terminal, batch, settle date).
 */
export type PaymentStatus = 'pending' | 'approved' | 'declined' | 'unknown' | 'reversed' | 'suspense' | 'disputed';
export const PAYMENT_STATUSES: readonly PaymentStatus[] = [
  'pending',
  'approved',
  'declined',
  'unknown',
  'reversed',
  'suspense',
  'disputed',
];
export type PaymentMethod = 'card' | 'cash';
/** unknown: the terminal gave no final answer to the void/refund; manual: nothing to refund against at the terminal (a person does it). */
export type RefundState = 'queued' | 'in_progress' | 'done' | 'failed' | 'unknown' | 'manual';
export const REFUND_STATES: readonly RefundState[] = ['queued', 'in_progress', 'done', 'failed', 'unknown', 'manual'];
/** Refund states in which money is still owed back to the customer. */
export const OWED_REFUND_STATES: readonly RefundState[] = ['queued', 'in_progress', 'failed', 'unknown', 'manual'];
/** What a pending terminal reversal (RC 98 / Q0 `P`) became: still pending, or no longer in the way. */
export type TerminalReversal = 'pending' | 'flushed';

@Entity('payment')
export class Payment {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'order_id', type: 'varchar', length: 36 })
  orderId: string;

  @Column({ type: 'varchar', length: 8 })
  method: PaymentMethod;

  @Column({ name: 'amount_fen', type: 'bigint', transformer: bigintAsNumber })
  amountFen: number;

  @Column({ type: 'varchar', length: 16 })
  status: PaymentStatus;

  @Column({ type: 'varchar', length: 64, nullable: true })
  lane: string | null;

  /** ECR reference = acquirer orderId. */
  @Column({ type: 'varchar', length: 32, nullable: true, unique: true })
  rf: string | null;

  /** The attempt's time as the acquirer knows it: YYYYMMDDhhmmss China time. */
  @Column({ name: 'txn_time', type: 'varchar', length: 14, nullable: true })
  txnTime: string | null;

  @Column({ type: 'tinyint', default: 0, transformer: boolAsNumber })
  acked: boolean;

  @Column({ type: 'varchar', length: 4, nullable: true })
  rc: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  rm: string | null;

  /** Why the outcome is what it is, in words (e.g. "no final response within T_RESP"). */
  @Column({ type: 'varchar', length: 255, nullable: true })
  reason: string | null;

  /** JSON array of the terminal's P1 prompts. */
  @Column({ type: 'text', nullable: true })
  prompts: string | null;

  @Column({ name: 'card_masked', type: 'varchar', length: 32, nullable: true })
  cardMasked: string | null;

  @Column({ name: 'card_type', type: 'varchar', length: 2, nullable: true })
  cardType: string | null;

  @Column({ name: 'terminal_id', type: 'varchar', length: 8, nullable: true })
  terminalId: string | null;

  @Column({ name: 'merchant_id', type: 'varchar', length: 15, nullable: true })
  merchantId: string | null;

  @Column({ name: 'batch_no', type: 'varchar', length: 6, nullable: true })
  batchNo: string | null;

  @Column({ name: 'trace_no', type: 'varchar', length: 6, nullable: true })
  traceNo: string | null;

  @Column({ type: 'varchar', length: 12, nullable: true })
  rrn: string | null;

  @Column({ name: 'auth_code', type: 'varchar', length: 6, nullable: true })
  authCode: string | null;

  /** DT + TM from the terminal: YYYYMMDDhhmmss. */
  @Column({ name: 'terminal_time', type: 'varchar', length: 14, nullable: true })
  terminalTime: string | null;

  @Column({ name: 'settle_date', type: 'varchar', length: 8, nullable: true })
  settleDate: string | null;

  @Column({ name: 'query_id', type: 'varchar', length: 32, nullable: true })
  queryId: string | null;

  /** When the sweeper should next ask about an unknown attempt (epoch ms). */
  @Column({ name: 'next_check_at', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  nextCheckAt: number | null;

  @Column({ type: 'int', default: 0 })
  checks: number;

  @Column({ name: 'unknown_since', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  unknownSince: number | null;

  /**
   * The ACP reversal (99): null, 'sent' (recorded before it goes out; its outcome is unknown until
   * answered, and the same reversal may be sent again), 'unknown' (answered 03/04/05 or not at all),
   * 'refused' (answered with a refusal: the original is final, ask for its status).
   */
  @Column({ name: 'reversal_state', type: 'varchar', length: 16, nullable: true })
  reversalState: string | null;

  @Column({ name: 'claimed_by', type: 'varchar', length: 64, nullable: true })
  claimedBy: string | null;

  @Column({ name: 'claim_until', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  claimUntil: number | null;

  @Column({ name: 'refund_state', type: 'varchar', length: 16, nullable: true })
  refundState: RefundState | null;

  /** How much of this card payment is to be given back (the overpaid part). */
  @Column({ name: 'refund_fen', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  refundFen: number | null;

  /** The terminal holds a reversal of this sale (RC 98, or Q0 `P`): an acquirer "approved" is not final while 'pending'. */
  @Column({ name: 'terminal_reversal', type: 'varchar', length: 16, nullable: true })
  terminalReversal: TerminalReversal | null;

  /** JSON `{ from, items: [{ source, detail, actor, at }] }`: verified answers that contradict a final status. */
  @Column({ type: 'text', nullable: true })
  evidence: string | null;

  /** The overpaid-card refund's own reference (V0/R0 RF), stored before its first byte; a crash is queried by it, never re-sent under another. */
  @Column({ name: 'refund_rf', type: 'varchar', length: 32, nullable: true })
  refundRf: string | null;

  @Column({ name: 'refund_txn_time', type: 'varchar', length: 14, nullable: true })
  refundTxnTime: string | null;

  @Column({ name: 'resolved_by', type: 'varchar', length: 64, nullable: true })
  resolvedBy: string | null;

  @Column({ name: 'resolution_note', type: 'text', nullable: true })
  resolutionNote: string | null;

  @Column({ name: 'created_by', type: 'varchar', length: 64 })
  createdBy: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintAsNumber })
  createdAt: number;

  @Column({ name: 'updated_at', type: 'bigint', transformer: bigintAsNumber })
  updatedAt: number;

  @Column({ name: 'finished_at', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  finishedAt: number | null;
}
