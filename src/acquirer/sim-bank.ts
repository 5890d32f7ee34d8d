/**
 * The simulated bank behind the simulated terminals and the simulated acquirer: what the card
 * network "really" did with each reference. The terminal simulator records what it sent to the
 * bank; the acquirer simulator answers queries and reversals from it. In the embedded default
 * both share one SimBank in-process; as separate programs the terminal simulator reaches the
 * acquirer simulator's `/sim/bank/...` routes (see HttpSimBank in the acquirer simulator).
 */
export type BankTxnStatus =
  | 'approved' // the issuer approved and the customer is charged
  | 'declined' // the issuer declined
  | 'reversed' // a reversal was accepted: not charged
  | 'voided'; // voided after approval

export interface BankTxn {
  orderId: string; // the RF
  amountFen: number;
  status: BankTxnStatus;
  txnTime: string; // YYYYMMDDhhmmss China time, when the bank saw it
  queryId: string; // 21 chars
  traceNo: string; // 6 digits
  settleDate: string; // MMDD
  respCode: string; // issuer response code for the original (00 approved, 51 …)
}

export interface SimBankPort {
  /** The terminal sent a transaction to the bank and the bank decided `status`. */
  record(
    txn: Omit<BankTxn, 'queryId' | 'settleDate' | 'traceNo'> &
      Partial<Pick<BankTxn, 'queryId' | 'settleDate' | 'traceNo'>>,
  ): Promise<void>;
  /** A reversal reached the bank (from the terminal or from the acquirer gateway). */
  reverse(orderId: string): Promise<'reversed' | 'not_found' | 'already_final'>;
  get(orderId: string): Promise<BankTxn | undefined>;
  /** Every transaction seen, for the simulated settlement file (when the bank can list them). */
  list?(): Promise<BankTxn[]>;
}
