import { EntityManager, In } from 'typeorm';
import { Db, exec, placeholders, rows } from '../db/db';
import { Payment } from '../payments/payment.entity';
import { PaymentsService } from '../payments/payments.service';
import { TerminalCardDriver } from '../payments/card-flow';
import { Logger } from '../shared/logger';
import { drivenLanes } from '../payments/lane-lease';

/**
 * Claims due unknown/suspense attempts for this instance. One status per query, so MySQL/MariaDB
 * walks the (status, next_check_at) index in order and stops at the limit: only the rows it returns
 * are locked, and SKIP LOCKED lets other instances take the next ones at the same moment. The claim
 * (claimed_by, claim_until) keeps them this instance's until it records a verdict or the claim ends.
 */
export async function claimDue(
  db: Db,
  now: number,
  opts: { instanceId: string; batchSize: number; claimMs: number },
): Promise<Payment[]> {
  return db.tx(async (m) => {
    const ids: string[] = [];
    for (const status of ['unknown', 'suspense']) {
      const room = opts.batchSize - ids.length;
      if (room <= 0) break;
      const due = await rows<{ id: string }>(
        m,
        `SELECT id FROM payment${db.kind === 'mysql' ? ' FORCE INDEX (ix_payment_status_due)' : ''} WHERE status = ? AND next_check_at <= ?
           AND (claim_until IS NULL OR claim_until < ?) ORDER BY next_check_at LIMIT ${Number(room)}${db.forUpdateSkipLocked}`,
        [status, now, now],
      );
      ids.push(...due.map((d) => d.id));
    }
    if (ids.length === 0) return [];
    // The claim is itself conditional and read back: on Galera the read above takes no lock, so another
    // node may have claimed (or settled) some of these since; only the rows this UPDATE changed are ours.
    const until = now + opts.claimMs;
    await exec(
      m,
      `UPDATE payment SET claimed_by = ?, claim_until = ? WHERE id IN (${placeholders(ids.length)})
       AND status IN ('unknown', 'suspense') AND next_check_at <= ? AND (claim_until IS NULL OR claim_until < ?)`,
      [opts.instanceId, until, ...ids, now, now],
    );
    return m.find(Payment, { where: { id: In(ids), claimedBy: opts.instanceId, claimUntil: until } });
  });
}

/**
 * Renews this instance's claim on attempts right before they are worked, and says which are still
 * ours. A batch is claimed at once but worked a few at a time, and with a slow acquirer (30 s per
 * call, a query then a reversal) the last of 200 attempts may wait longer than the claim lasts;
 * another instance may then have taken it and be querying or reversing it now. Only an attempt
 * nobody else claimed since (claimed_by still ours: recording a verdict or settling clears it) and
 * still open is worked, and its claim then runs from now, covering the work actually in progress.
 * One guarded UPDATE for all of them, then the rows it left ours are read back in the same
 * transaction (the UPDATE holds their locks until the commit; on Galera a conflicting claim from
 * another node fails this commit instead). The caller acts on the answer only after the commit.
 */
export async function renewClaims(
  m: EntityManager,
  ids: string[],
  now: number,
  opts: { instanceId: string; claimMs: number },
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const until = now + opts.claimMs;
  const open = "status IN ('unknown', 'suspense')";
  await exec(
    m,
    `UPDATE payment SET claim_until = ? WHERE id IN (${placeholders(ids.length)}) AND claimed_by = ? AND ${open}`,
    [until, ...ids, opts.instanceId],
  );
  const ours = await rows<{ id: string }>(
    m,
    `SELECT id FROM payment WHERE id IN (${placeholders(ids.length)}) AND claimed_by = ? AND claim_until = ? AND ${open}`,
    [...ids, opts.instanceId, until],
  );
  return new Set(ours.map((r) => r.id));
}

/**
 * Gives back this instance's claim on attempts it will not work now (the acquirer asked for quiet),
 * due again no sooner than `dueAt`: left claimed, they would wait out the claim (minutes) instead.
 */
export async function deferClaimed(db: Db, ids: string[], dueAt: number, instanceId: string): Promise<void> {
  if (ids.length === 0) return;
  await db.tx((m) =>
    exec(
      m,
      `UPDATE payment SET claimed_by = NULL, claim_until = NULL,
         next_check_at = CASE WHEN next_check_at < ? THEN ? ELSE next_check_at END
       WHERE id IN (${placeholders(ids.length)}) AND claimed_by = ? AND status IN ('unknown', 'suspense')`,
      [dueAt, dueAt, ...ids, instanceId],
    ),
  );
}

/** How long a `pending` attempt on a driven lane may go without a recorded outcome before the driver is presumed to have lost it. */
const ORPHAN_AFTER_MS = 10_000;

/**
 * `pending` attempts nobody drives any more are unknown, never declined: on a lane this instance
 * drives, one it is not working on (its recording failed); on a lane whose lease no live instance
 * holds (its owner died), found by any instance. Attempts on a lane another live instance drives are
 * left alone: they are that instance's.
 */
export async function markOrphanedPending(
  db: Db,
  payments: PaymentsService,
  cards: TerminalCardDriver | null,
  now: number,
  log: Logger,
): Promise<number> {
  const mine = cards?.lanes() ?? [];
  const found: { id: string; why: string }[] = [];
  if (mine.length) {
    const stale = await db.read((m) =>
      rows<{ id: string }>(
        m,
        `SELECT id FROM payment WHERE status = 'pending' AND method = 'card' AND updated_at < ? AND lane IN (${placeholders(mine.length)})`,
        [now - ORPHAN_AFTER_MS, ...mine],
      ),
    );
    for (const { id } of stale) if (!cards!.isInFlight(id)) found.push({ id, why: 'no_outcome_recorded' });
  }
  // Two reads rather than a join: lane names are compared in JavaScript, whatever collation each table got.
  const driven = await drivenLanes(db, now);
  const pending = await db.read((m) =>
    rows<{ id: string; lane: string | null }>(
      m,
      "SELECT id, lane FROM payment WHERE status = 'pending' AND method = 'card'",
    ),
  );
  for (const { id, lane } of pending) {
    if ((lane && driven.has(lane)) || cards?.isInFlight(id) || found.some((f) => f.id === id)) continue;
    found.push({ id, why: 'lane_not_driven' });
    log.warn('a card attempt was left pending on a lane no live instance drives; its outcome is unknown', {
      paymentId: id,
      lane,
    });
  }
  let n = 0;
  for (const { id, why } of found) {
    // Nobody knows whether its ACK came: taken as accepted, so the terminal's `N` cannot decline a charged card.
    await payments.markUnknown(id, { reason: why, acked: true }, 'system:sweeper').then(
      () => n++,
      () => undefined,
    );
  }
  return n;
}
