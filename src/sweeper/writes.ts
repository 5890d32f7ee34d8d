import { EntityManager } from 'typeorm';
import { Db, exec, placeholders } from '../db/db';
import { Batcher, Outcome } from '../db/batch';
import { DomainError } from '../shared/errors';
import { renewClaims } from './claim';

/** One of the sweeper's units of work (a verdict, a rescheduled check). */
export type Write<T> = (m: EntityManager) => Promise<T>;

export interface SweepWritesOptions {
  instanceId: string;
  claimMs: number;
  /** Units of work per transaction at most. */
  maxSize: number;
  /** How long the first unit of work waits for company. */
  maxWaitMs: number;
}

type BatchInfo = { name: string; size: number; seconds: number; fallback: boolean };

interface Unit {
  fn: Write<unknown>;
  /** It may refuse (a DomainError) after it has written: it runs in a savepoint, so the refusal undoes only it. */
  refusable: boolean;
}

/**
 * Group commit for the sweeper. Every attempt it works goes through the same steps as before —
 * renew the claim, ask, (record a reversal as sent, send it,) record the verdict — and every step
 * that writes is committed before the next step acts on it. What changes is that the writes of the
 * attempts being worked at the same moment share one transaction: claim renewals are one guarded
 * UPDATE for all of them (and a read-back), reversals recorded as sent one UPDATE, and verdicts run
 * one after another, each that may be refused in its own savepoint, so a business refusal (a
 * DomainError: the payment changed meanwhile) undoes only that verdict and is that caller's answer.
 * Anything else fails the whole transaction, and each unit is then run again in a transaction of its
 * own. No caller is answered before the transaction carrying its write has committed.
 */
export class SweepWrites {
  private readonly units: Batcher<Unit, unknown>;
  private readonly renewals: Batcher<{ id: string; now: number }, boolean>;
  private readonly sent: Batcher<{ id: string; now: number }, void>;
  /** Transactions committed, units of work they carried, and batches that fell back to one unit per transaction. */
  readonly stats = { batches: 0, units: 0, fallbacks: 0 };

  constructor(
    private readonly db: Db,
    private readonly opts: SweepWritesOptions,
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
    this.units = new Batcher<Unit, unknown>({
      ...common,
      name: 'sweeper',
      applyBatch: (units) => this.applyUnits(units),
      applyOne: (u) => db.tx(u.fn),
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
    this.sent = new Batcher<{ id: string; now: number }, void>({
      ...common,
      name: 'sweeper_reversals',
      applyBatch: async (inputs) => {
        await db.tx((m) => markReversalsSent(m, ids(inputs), latest(inputs)));
        return inputs.map(() => ({ ok: true, value: undefined }));
      },
      applyOne: (i) => db.tx((m) => markReversalsSent(m, [i.id], i.now)),
      onBatch: observe,
    });
  }

  /**
   * Runs `fn` in a transaction (shared with other units of work) and resolves once that has
   * committed. `refusable: false` is for a unit whose only failures are database errors (no
   * savepoint: a failure sends the whole batch to the one-per-transaction fallback).
   */
  write<T>(fn: Write<T>, opts: { refusable?: boolean } = {}): Promise<T> {
    return this.units.submit({ fn, refusable: opts.refusable ?? true }) as Promise<T>;
  }

  /** Renews this instance's claim on an attempt (see renewClaims); true once committed when it is still ours. */
  renewClaim(id: string, now: number): Promise<boolean> {
    return this.renewals.submit({ id, now });
  }

  /** Records that a reversal is about to be sent (committed when this resolves). */
  markReversalSent(id: string, now: number): Promise<void> {
    return this.sent.submit({ id, now });
  }

  async idle(): Promise<void> {
    await Promise.all([this.units.idle(), this.renewals.idle(), this.sent.idle()]);
  }

  private applyUnits(units: Unit[]): Promise<Outcome<unknown>[]> {
    // A lone unit has its own transaction (with the deadlock retries): whatever it throws is its answer.
    if (units.length === 1)
      return this.db.tx(units[0].fn).then(
        (value) => [{ ok: true, value }],
        (error) => [{ ok: false, error }],
      );
    return this.db.tx(async (m) => {
      // Built afresh on each try: a deadlock (or a Galera certification failure) reruns the whole transaction.
      const outcomes: Outcome<unknown>[] = [];
      for (const u of units) {
        // A savepoint of the same name replaces the previous one (MariaDB) or stacks on it (SQLite; all
        // released at the commit): either way ROLLBACK TO goes back to the start of this unit.
        if (u.refusable) await m.query('SAVEPOINT sweep_unit');
        try {
          outcomes.push({ ok: true, value: await u.fn(m) });
        } catch (err) {
          if (!u.refusable || !(err instanceof DomainError)) throw err;
          await m.query('ROLLBACK TO SAVEPOINT sweep_unit');
          outcomes.push({ ok: false, error: err });
        }
      }
      return outcomes;
    });
  }
}

const ids = (inputs: { id: string }[]) => [...new Set(inputs.map((i) => i.id))];
const latest = (inputs: { now: number }[]) => Math.max(...inputs.map((i) => i.now));

/** Recorded before the reversals go out, so a crash mid-call is visible to the next check. */
async function markReversalsSent(m: EntityManager, paymentIds: string[], now: number): Promise<void> {
  await exec(
    m,
    `UPDATE payment SET reversal_state = 'sent', updated_at = ? WHERE id IN (${placeholders(paymentIds.length)}) AND status IN ('unknown', 'suspense')`,
    [now, ...paymentIds],
  );
}
