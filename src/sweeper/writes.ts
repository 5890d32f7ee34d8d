import { EntityManager } from 'typeorm';
import { Db, Stmt, placeholders, runAll } from '../db/db';
import { Batcher, Outcome } from '../db/batch';
import type { SettleVerdict } from '../payments/settle-batch';
import { renewClaims } from './claim';

export interface SweepWritesOptions {
  instanceId: string;
  claimMs: number;
  /** Units of work per transaction at most. */
  maxSize: number;
  /** How long the first unit of work waits for company. */
  maxWaitMs: number;
}

type BatchInfo = { name: string; size: number; seconds: number; fallback: boolean };

/** What shares the sweeper's write transactions: verdicts, and reversals recorded as about to be sent. */
type VerdictWork = { kind: 'verdict'; verdict: SettleVerdict };
type SentMark = { kind: 'sent'; id: string; now: number };
type Work = VerdictWork | SentMark;

/** Verdicts written in one transaction, one outcome each, `first` in its first round trip (PaymentsService.settleManyIn). */
export type SettleMany = (m: EntityManager, verdicts: SettleVerdict[], first?: Stmt[]) => Promise<Outcome<boolean>[]>;

/**
 * Group commit for the sweeper. Every attempt it works goes through the same steps as before —
 * renew the claim, ask, (record a reversal as sent, send it,) record the verdict — and every step
 * that writes is committed before the next step acts on it. What changes is that the writes of the
 * attempts being worked at the same moment share one transaction: claim renewals are one guarded
 * UPDATE for all of them (and a read-back); reversals recorded as sent (one UPDATE) and verdicts (one
 * batch, payments/settle-batch.ts: the reads in one round trip, the writes in one more) share
 * another, in which a business refusal (the payment changed meanwhile) is that verdict's answer
 * alone. Anything else fails the whole transaction, and each unit is then run again in a
 * transaction of its own. No caller is answered before the transaction carrying its write has
 * committed.
 */
export class SweepWrites {
  private readonly writes: Batcher<Work, boolean>;
  private readonly renewals: Batcher<{ id: string; now: number }, boolean>;
  /** Transactions committed, units of work they carried, and batches that fell back to one unit per transaction. */
  readonly stats = { batches: 0, units: 0, fallbacks: 0 };

  constructor(
    private readonly db: Db,
    private readonly opts: SweepWritesOptions,
    settleMany: SettleMany,
    onBatch?: (info: BatchInfo) => void,
  ) {
    const observe = (info: BatchInfo) => {
      this.stats.batches++;
      this.stats.units += info.size;
      if (info.fallback) this.stats.fallbacks++;
      onBatch?.(info);
    };
    // One batch at a time on SQLite (one writer); a few on MariaDB so some fill while others commit.
    const common = { maxSize: opts.maxSize, maxWaitMs: opts.maxWaitMs, maxInFlight: db.kind === 'sqlite' ? 1 : 4 };
    this.writes = new Batcher<Work, boolean>({
      ...common,
      name: 'sweeper',
      applyBatch: (work) =>
        db.tx(async (m) => {
          // The reversal marks go in the verdicts' first round trip.
          const sent = work.filter((w): w is SentMark => w.kind === 'sent');
          const marks = sent.length ? [markReversalsSent(ids(sent), latest(sent))] : [];
          const verdicts = work.filter((w): w is VerdictWork => w.kind === 'verdict').map((w) => w.verdict);
          let settled: Outcome<boolean>[] = [];
          if (verdicts.length) settled = await settleMany(m, verdicts, marks);
          else await runAll(m, marks);
          let next = 0;
          return work.map((w) => (w.kind === 'sent' ? { ok: true, value: true } : settled[next++]));
        }),
      applyOne: (w) =>
        db.tx(async (m) => {
          if (w.kind === 'sent') {
            await runAll(m, [markReversalsSent([w.id], w.now)]);
            return true;
          }
          const [outcome] = await settleMany(m, [w.verdict]);
          if (!outcome.ok) throw outcome.error;
          return outcome.value;
        }),
      onBatch: observe,
    });
    this.renewals = new Batcher<{ id: string; now: number }, boolean>({
      ...common,
      name: 'sweeper_renewals',
      applyBatch: async (inputs) => {
        const ours = await db.tx((m) => renewClaims(m, ids(inputs), latest(inputs), opts));
        return inputs.map((i) => ({ ok: true, value: ours.has(i.id) }));
      },
      applyOne: async (i) => (await db.tx((m) => renewClaims(m, [i.id], i.now, opts))).has(i.id),
      onBatch: observe,
    });
  }

  /**
   * Writes a verdict (in a transaction shared with other verdicts) and resolves once that has
   * committed: `true`, or for a recheck whether it parked the attempt; a refusal rejects.
   */
  settle(verdict: SettleVerdict): Promise<boolean> {
    return this.writes.submit({ kind: 'verdict', verdict });
  }

  /** Renews this instance's claim on an attempt (see renewClaims); true once committed when it is still ours. */
  renewClaim(id: string, now: number): Promise<boolean> {
    return this.renewals.submit({ id, now });
  }

  /** Records that a reversal is about to be sent (committed when this resolves). */
  async markReversalSent(id: string, now: number): Promise<void> {
    await this.writes.submit({ kind: 'sent', id, now });
  }

  async idle(): Promise<void> {
    await Promise.all([this.writes.idle(), this.renewals.idle()]);
  }
}

const ids = (inputs: { id: string }[]) => [...new Set(inputs.map((i) => i.id))];
const latest = (inputs: { now: number }[]) => Math.max(...inputs.map((i) => i.now));

/** Recorded before the reversals go out, so a crash mid-call is visible to the next check. */
function markReversalsSent(paymentIds: string[], now: number): Stmt {
  return {
    sql: `UPDATE payment SET reversal_state = 'sent', updated_at = ? WHERE id IN (${placeholders(paymentIds.length)}) AND status IN ('unknown', 'suspense')`,
    params: [now, ...paymentIds],
  };
}
