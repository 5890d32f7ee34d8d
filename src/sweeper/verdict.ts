import { ApprovalFacts } from '../payments/payments.service';
import { TerminalReversal } from '../payments/payment.entity';

/**
 * What one check of an unknown attempt concluded. Reasons are stable codes (the payment's `reason`);
 * details go to the log and the audit row.
 */
export type Verdict =
  | { kind: 'approved'; facts: ApprovalFacts; source: 'terminal' | 'acquirer' }
  | { kind: 'failed'; to: 'declined' | 'reversed'; rc?: string; reason: string; terminalReversal?: TerminalReversal }
  | {
      kind: 'unknown';
      reason: string;
      /**
       * The acquirer asked for quiet (respCode 37, queries too frequent): neither this attempt nor any
       * other is asked again for this long (Sweeper.quiet).
       */
      quietMs?: number;
      reversalState?: 'sent' | 'unknown' | 'refused';
      /** The terminal holds a reversal of this sale (learnt from Q0 `P`). */
      terminalReversal?: TerminalReversal;
      /** Park it in suspense now (the terminal's reversal can no longer be settled online). */
      suspense?: boolean;
    };
