/**
 * The port the sweeper uses to ask the acquirer (UnionPay ACP gateway) about a card transaction.
 * Spec: ../shared/spec/acquirer-gateway.md. The HTTP client and the simulator's in-process use
 * both go through this; a response that cannot be verified is reported as `no_answer`.
 */

export interface AcquirerTxnRef {
  orderId: string; // the attempt's RF
  txnTime: string; // the attempt's time, YYYYMMDDhhmmss China time
}

export type AcquirerQueryResult =
  /** origRespCode 00. */
  | {
      kind: 'approved';
      queryId?: string;
      traceNo?: string;
      traceTime?: string;
      settleDate?: string;
      txnAmtFen?: number;
      respCode: string;
      origRespCode: string;
    }
  /** origRespCode other than 00/03/04/05: a confirmed failure (declined or reversed). */
  | { kind: 'failed'; respCode: string; origRespCode: string; origRespMsg?: string }
  /** origRespCode 03/04/05, or respCode 03/04/05: ask again later. */
  | { kind: 'processing'; respCode: string; origRespCode?: string }
  /** respCode 34: no such transaction yet; unknown. */
  | { kind: 'not_found'; respCode: string }
  /** respCode 37: too many queries; back off. */
  | { kind: 'rate_limited'; respCode: string }
  /** Transport error, timeout, non-200, unparsable, unverifiable, or any other respCode. */
  | { kind: 'no_answer'; reason: string; respCode?: string };

export type AcquirerReversalResult =
  /** respCode 00: the customer was not charged. */
  | { kind: 'reversed'; respCode: string }
  /** respCode 03/04/05: unknown, query again. */
  | { kind: 'unknown'; respCode: string }
  /** Any other respCode: refused (e.g. original already final); query the original. */
  | { kind: 'refused'; respCode: string; respMsg?: string }
  | { kind: 'no_answer'; reason: string };

export interface Acquirer {
  query(ref: AcquirerTxnRef): Promise<AcquirerQueryResult>;
  reverse(ref: AcquirerTxnRef & { amountFen: number }): Promise<AcquirerReversalResult>;
}
