import { OWED_REFUND_STATES, Payment, PaymentStatus } from './payment.entity';

/** One verified answer about whether the customer was charged. */
export interface EvidenceItem {
  source: 'terminal' | 'acquirer' | 'reversal' | 'recon' | 'resolve';
  detail: Record<string, unknown>;
  /** What it says: charged (approved at the bank) or not charged. */
  says: 'charged' | 'not_charged';
  actor: string;
  at: string;
}

/** `from`: the final status the evidence contradicted (what the money and the stock did until a person decides). */
export interface Evidence {
  from: PaymentStatus;
  items: EvidenceItem[];
}

/** Money the store owes back on an order: refunds not yet done, and disputed attempts the bank charged after we said no. */
export function owedFenOf(
  payments: Pick<Payment, 'status' | 'amountFen' | 'refundState' | 'refundFen' | 'evidence'>[],
): number {
  let owed = 0;
  for (const p of payments) {
    if (p.refundState && OWED_REFUND_STATES.includes(p.refundState)) owed += p.refundFen ?? p.amountFen;
    else if (p.status === 'disputed' && parseEvidence(p.evidence)?.from !== 'approved') owed += p.amountFen;
  }
  return owed;
}

export function parseEvidence(raw: string | null): Evidence | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Evidence;
  } catch {
    return null;
  }
}
