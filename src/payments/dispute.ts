/**
 * MINIMAL stand-in for the faults issue's dispute (h-sweep owns the real one, as
 * `PaymentsService.dispute` with this same signature): money the acquirer settled for an attempt
 * we recorded as declined or reversed. The attempt moves to `disputed` (a state only a person
 * leaves) with an audit row carrying the evidence; nothing is resolved automatically.
 */
import { audit } from '../audit/audit.service';
import { Db, exec, rows } from '../db/db';
import { Clock } from '../shared/clock';
import { notFound } from '../shared/errors';

export type DisputeEvidence = { source: 'terminal' | 'acquirer' | 'reversal' | 'recon' | 'resolve'; detail: Record<string, unknown> };
export type DisputeOutcome = 'disputed' | 'already_disputed' | 'not_applicable';

/** Which attempts may become disputed: only those we recorded as a confirmed failure. */
const DISPUTABLE = ['declined', 'reversed'];

export async function disputePayment(db: Db, clock: Clock, paymentId: string, evidence: DisputeEvidence, actor: string): Promise<DisputeOutcome> {
  return db.tx(async (m) => {
    const [p] = await rows<{ status: string }>(m, `SELECT status FROM payment WHERE id = ?${db.forUpdate}`, [paymentId]);
    if (!p) throw notFound('payment', paymentId);
    if (p.status === 'disputed') return 'already_disputed';
    if (!DISPUTABLE.includes(p.status)) return 'not_applicable';
    const now = clock.now().getTime();
    const n = await exec(m, "UPDATE payment SET status = 'disputed', updated_at = ? WHERE id = ? AND status = ?", [now, paymentId, p.status]);
    if (n !== 1) return 'not_applicable';
    await audit(m, { actor, entity: 'payment', entityId: paymentId, action: 'dispute', before: { status: p.status }, after: { status: 'disputed', evidence }, at: now });
    return 'disputed';
  });
}
