import { Db, rows } from '../db/db';

export interface Finding {
  rule: string;
  subject: string;
  detail: string;
}

const n = (v: unknown) => Number(v ?? 0);

/**
 * Recomputes every stock invariant from the ledger:
 *  1. on hand = Σ movements' on-hand deltas, per SKU;
 *  2. reserved = Σ movements' reserved deltas = Σ active reservations (order lines), per SKU;
 *  3. available = on hand − reserved ≥ 0 and reserved ≥ 0;
 *  4. every reservation was made once and ended at most once, and its state agrees with the ledger;
 *  5. returned units = Σ return lines ≤ sold, each return line moved once (`return` or `damaged`);
 *  6. a return's refund legs sum to its refund, and no tender's legs exceed what it took.
 */
export async function checkInvariants(db: Db): Promise<Finding[]> {
  return db.read(async (m) => {
    const findings: Finding[] = [];
    const skus = await rows<{
      sku: string;
      on_hand: unknown;
      reserved: unknown;
      mv_on_hand: unknown;
      mv_reserved: unknown;
      active: unknown;
    }>(
      m,
      `
      SELECT s.sku, s.on_hand, s.reserved,
             (SELECT COALESCE(SUM(mv.on_hand_delta), 0) FROM stock_movement mv WHERE mv.sku = s.sku) AS mv_on_hand,
             (SELECT COALESCE(SUM(mv.reserved_delta), 0) FROM stock_movement mv WHERE mv.sku = s.sku) AS mv_reserved,
             (SELECT COALESCE(SUM(l.qty), 0) FROM order_line l WHERE l.sku = s.sku AND l.reservation = 'active') AS active
        FROM sku s`,
    );
    for (const s of skus) {
      const onHand = n(s.on_hand),
        reserved = n(s.reserved);
      if (onHand !== n(s.mv_on_hand))
        findings.push({
          rule: 'on_hand_equals_ledger',
          subject: s.sku,
          detail: `on hand ${onHand}, ledger says ${n(s.mv_on_hand)}`,
        });
      if (reserved !== n(s.mv_reserved))
        findings.push({
          rule: 'reserved_equals_ledger',
          subject: s.sku,
          detail: `reserved ${reserved}, ledger says ${n(s.mv_reserved)}`,
        });
      if (reserved !== n(s.active))
        findings.push({
          rule: 'reserved_equals_active_reservations',
          subject: s.sku,
          detail: `reserved ${reserved}, active reservations hold ${n(s.active)}`,
        });
      if (reserved < 0)
        findings.push({ rule: 'reserved_not_negative', subject: s.sku, detail: `reserved ${reserved}` });
      if (onHand - reserved < 0)
        findings.push({ rule: 'available_not_negative', subject: s.sku, detail: `available ${onHand - reserved}` });
    }
    const lines = await rows<{ id: string; reservation: string; made: unknown; ended: unknown }>(
      m,
      `
      SELECT l.id, l.reservation,
             SUM(CASE WHEN mv.kind = 'reservation' THEN 1 ELSE 0 END) AS made,
             SUM(CASE WHEN mv.kind IN ('sale', 'release') THEN 1 ELSE 0 END) AS ended
        FROM order_line l LEFT JOIN stock_movement mv ON mv.order_line_id = l.id
       GROUP BY l.id, l.reservation
      HAVING SUM(CASE WHEN mv.kind = 'reservation' THEN 1 ELSE 0 END) <> 1
          OR SUM(CASE WHEN mv.kind IN ('sale', 'release') THEN 1 ELSE 0 END) <> (CASE WHEN l.reservation = 'active' THEN 0 ELSE 1 END)`,
    );
    for (const l of lines) {
      const ended = n(l.ended);
      if (n(l.made) !== 1)
        findings.push({ rule: 'reservation_made_once', subject: l.id, detail: `${n(l.made)} reservation movements` });
      if (ended > 1) findings.push({ rule: 'reservation_ended_once', subject: l.id, detail: `ended ${ended} times` });
      else if (ended !== (l.reservation === 'active' ? 0 : 1))
        findings.push({
          rule: 'reservation_state_matches_ledger',
          subject: l.id,
          detail: `state ${l.reservation}, ${ended} ending movements`,
        });
    }
    // Returns: a line's returned units are the Σ of its return lines, never more than were sold, and
    // each return line has exactly one movement (`return` raising on hand by its qty, or `damaged`).
    const returned = await rows<{
      id: string;
      qty: unknown;
      returned_qty: unknown;
      reservation: string;
      lines_qty: unknown;
    }>(
      m,
      `
      SELECT l.id, l.qty, l.returned_qty, l.reservation,
             (SELECT COALESCE(SUM(rl.qty), 0) FROM return_line rl WHERE rl.order_line_id = l.id) AS lines_qty
        FROM order_line l WHERE l.returned_qty <> 0 OR EXISTS (SELECT 1 FROM return_line rl WHERE rl.order_line_id = l.id)`,
    );
    for (const l of returned) {
      if (n(l.returned_qty) !== n(l.lines_qty))
        findings.push({
          rule: 'returned_equals_return_lines',
          subject: l.id,
          detail: `returned ${n(l.returned_qty)}, return lines hold ${n(l.lines_qty)}`,
        });
      if (n(l.returned_qty) > n(l.qty))
        findings.push({
          rule: 'returned_not_above_sold',
          subject: l.id,
          detail: `returned ${n(l.returned_qty)} of ${n(l.qty)}`,
        });
      if (l.reservation !== 'sold')
        findings.push({ rule: 'returned_only_when_sold', subject: l.id, detail: `reservation ${l.reservation}` });
    }
    const moves = await rows<{ return_id: string; order_line_id: string; qty: unknown; mv: unknown; bad: unknown }>(
      m,
      `
      SELECT rl.return_id, rl.order_line_id, rl.qty,
             (SELECT COUNT(*) FROM stock_movement mv WHERE mv.ref = rl.return_id AND mv.order_line_id = rl.order_line_id AND mv.kind IN ('return', 'damaged')) AS mv,
             (SELECT COUNT(*) FROM stock_movement mv WHERE mv.ref = rl.return_id AND mv.order_line_id = rl.order_line_id
                AND ((mv.kind = 'return' AND mv.on_hand_delta <> rl.qty) OR (mv.kind = 'damaged' AND mv.on_hand_delta <> 0) OR mv.reserved_delta <> 0)) AS bad
        FROM return_line rl`,
    );
    for (const r of moves) {
      if (n(r.mv) !== 1)
        findings.push({
          rule: 'return_line_moved_once',
          subject: `${r.return_id}/${r.order_line_id}`,
          detail: `${n(r.mv)} return/damaged movements`,
        });
      else if (n(r.bad) !== 0)
        findings.push({
          rule: 'return_movement_matches_line',
          subject: `${r.return_id}/${r.order_line_id}`,
          detail: `movement does not match ${n(r.qty)} units`,
        });
    }
    // Money going back: a return's legs carry exactly its refund, and no tender gives back more than it took.
    const legSums = await rows<{ id: string; refund_fen: unknown; legs: unknown }>(
      m,
      `
      SELECT r.id, r.refund_fen, (SELECT COALESCE(SUM(l.amount_fen), 0) FROM refund_leg l WHERE l.return_id = r.id) AS legs
        FROM order_return r WHERE r.refund_fen <> (SELECT COALESCE(SUM(l.amount_fen), 0) FROM refund_leg l WHERE l.return_id = r.id)`,
    );
    for (const r of legSums)
      findings.push({
        rule: 'return_legs_carry_refund',
        subject: r.id,
        detail: `refund ${n(r.refund_fen)}, legs ${n(r.legs)}`,
      });
    const tenders = await rows<{ id: string; amount_fen: unknown; legs: unknown }>(
      m,
      `
      SELECT p.id, p.amount_fen, SUM(l.amount_fen) AS legs FROM payment p JOIN refund_leg l ON l.payment_id = p.id
       GROUP BY p.id, p.amount_fen HAVING SUM(l.amount_fen) > p.amount_fen`,
    );
    for (const p of tenders)
      findings.push({
        rule: 'tender_not_over_refunded',
        subject: p.id,
        detail: `took ${n(p.amount_fen)}, legs give back ${n(p.legs)}`,
      });
    return findings;
  });
}
