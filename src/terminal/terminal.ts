/**
 * The port the payment domain uses to drive a lane's card terminal. The serial driver and the
 * in-process simulator both implement it; the domain never knows which it got.
 * Wire protocol: ../shared/spec/ecr-serial-protocol.md.
 */

/** Fields a terminal returns with an approved sale (S1 RC=00). Card number is masked by the terminal. */
export interface ApprovedSale {
  rc: '00';
  rm?: string;
  amountFen: number;
  rf: string;
  cardMasked?: string; // CN, e.g. 622848******1234
  cardType?: string; // CT
  terminalId?: string; // TI
  merchantId?: string; // MI
  batchNo?: string; // BN
  traceNo?: string; // TN
  rrn?: string; // RR
  authCode?: string; // AC
  txnDate?: string; // DT YYYYMMDD
  txnTime?: string; // TM hhmmss
}

/**
 * Outcome of one S0/V0/R0 request, already classified by the spec's RC table:
 * - approved: RC 00.
 * - declined: a confirmed failure (issuer decline codes, C1). Nothing was charged.
 * - not_executed: BZ, FE, NS, or the request frame was NAKed on every send. Nothing was charged.
 * - unknown: RC 98, any unlisted RC, no final response within T_RESP, or the line broke.
 *   `acked` says whether the terminal ever ACKed the request frame (a Q0 answer `N` is a
 *   confirmed failure only when it did not).
 */
export type SaleOutcome =
  | { kind: 'approved'; sale: ApprovedSale }
  | { kind: 'declined'; rc: string; rm?: string }
  | { kind: 'not_executed'; rc?: string; rm?: string; reason: string }
  | { kind: 'unknown'; rc?: string; rm?: string; reason: string; acked: boolean };

/** Not executed because the terminal was busy (its BZ, or our driver's own busy refusal): the same RF may go out again. */
export function notExecutedBusy(outcome: SaleOutcome): boolean {
  return outcome.kind === 'not_executed' && (outcome.rc === 'BZ' || /busy/.test(outcome.reason));
}

/** What the terminal's journal says of a reference (Q1). */
export type QueryStatus = 'A' | 'D' | 'R' | 'P' | 'V' | 'N';

export type QueryOutcome =
  | {
      kind: 'status';
      status: QueryStatus;
      amountFen?: number;
      traceNo?: string;
      rrn?: string;
      txnDate?: string;
      txnTime?: string;
    }
  /** The query itself failed (busy, line down, no answer): it says nothing about the transaction. */
  | { kind: 'failed'; reason: string; rc?: string };

export interface SaleHooks {
  /** The terminal ACKed the request frame: from here on a missing answer is `unknown`. */
  onAcked?(): void | Promise<void>;
  /** A P1 progress prompt (请插卡, 请输入密码, …). */
  onPrompt?(text: string): void | Promise<void>;
}

export interface SaleRequest {
  rf: string;
  amountFen: number;
}

export interface VoidRequest {
  rf: string; // a new reference for the void itself
  amountFen: number;
  traceNo: string; // TN of the sale being voided
}

export interface RefundRequest {
  rf: string; // a new reference for the refund itself
  amountFen: number;
  rrn: string; // RR of the original sale
  originalDate: string; // OD, YYYYMMDD
}

export interface SimpleOutcome {
  ok: boolean;
  rc?: string;
  rm?: string;
  reason?: string;
}

export interface Terminal {
  readonly lane: string;
  /** True when no request is in flight on the line (the sweeper only queries an idle terminal). */
  isIdle(): boolean;
  /** True when the port is open (a dead line makes the sweeper go to the acquirer). */
  isConnected(): boolean;
  sale(req: SaleRequest, hooks?: SaleHooks): Promise<SaleOutcome>;
  voidSale(req: VoidRequest, hooks?: SaleHooks): Promise<SaleOutcome>;
  refund(req: RefundRequest, hooks?: SaleHooks): Promise<SaleOutcome>;
  query(rf: string): Promise<QueryOutcome>;
  /** L0: also makes the terminal send any pending reversal to the bank. */
  signIn(): Promise<SimpleOutcome>;
  close(): Promise<void>;
}

/** Thrown (or returned as not_executed) when a request arrives while another is on the wire. */
export class TerminalBusyError extends Error {
  readonly code = 'terminal_busy';
  constructor(lane: string) {
    super(`terminal on lane ${lane} is busy with another request`);
  }
}
