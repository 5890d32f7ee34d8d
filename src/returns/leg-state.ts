import { EntityManager } from 'typeorm';
import { exec } from '../db/db';
import { conflict } from '../shared/errors';
import { LegStatus } from './refund-leg.entity';

/**
 * The only ways a refund leg's status may change. An unknown leg ends only in a confirmed outcome
 * under its own RF; a failed one only by being paid in cash; a queued one (never sent) is sent, or failed by a person.
 */
export const LEG_TRANSITIONS: Readonly<Record<LegStatus, readonly LegStatus[]>> = {
  // A queued leg was never sent: a person may fail it (its lane's terminal is gone) and give it back in cash.
  queued: ['pending', 'failed'],
  pending: ['approved', 'failed', 'unknown', 'queued'],
  unknown: ['approved', 'failed'],
  failed: ['paid_in_cash'],
  approved: [],
  paid_in_cash: [],
};

export const OPEN_LEG_STATUSES: readonly LegStatus[] = ['queued', 'pending', 'unknown'];

/** Conditional UPDATE of a leg's status (and other columns of the same change); 409 when it lost a race. */
export async function moveLeg(
  m: EntityManager,
  legId: string,
  from: LegStatus,
  to: LegStatus,
  now: number,
  set: Record<string, string | number | null> = {},
): Promise<void> {
  if (!LEG_TRANSITIONS[from].includes(to))
    throw conflict('leg_transition_refused', `a refund leg cannot go from ${from} to ${to}`, { legId, from, to });
  const cols = Object.keys(set);
  const n = await exec(
    m,
    `UPDATE refund_leg SET ${['status = ?', 'updated_at = ?', ...cols.map((c) => `${c} = ?`)].join(', ')} WHERE id = ? AND status = ?`,
    [to, now, ...cols.map((c) => set[c]), legId, from],
  );
  if (n !== 1) throw conflict('leg_changed', `refund leg ${legId} is no longer ${from}`, { legId, from, to });
}
