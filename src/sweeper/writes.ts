import { EntityManager } from 'typeorm';
import { Db } from '../db/db';
import { Batcher, Outcome } from '../db/batch';
import { DomainError } from '../shared/errors';

/** One of the sweeper's units of work (a claim renewal, a reversal recorded as sent, a verdict). */
export type Write<T> = (m: EntityManager) => Promise<T>;

export interface SweepWritesOptions {
  /** Units of work per transaction at most. */
  maxSize: number;
  /** How long the first unit of work waits for company. */
  maxWaitMs: number;
}

/**
 * Group commit for the sweeper. Every attempt it works goes through the same steps as before —
 * renew the claim, ask, (record a reversal as sent, send it,) record the verdict — and every step
 * that writes is committed before the next step acts on it. What changes is that the writes of the
 * attempts being worked at the same moment share one transaction: each unit of work runs in its own
 * savepoint, so a business refusal (a DomainError: the payment changed meanwhile) undoes only that
 * unit and is that caller's answer; anything else fails the whole transaction, and then each unit
 * is run again in a transaction of its own. No caller is answered before its transaction committed.
 */
export class SweepWrites {
  private readonly batcher: Batcher<Write<unknown>, unknown>;
  /** Transactions committed, units of work they carried, and batches that fell back to one unit per transaction. */
  readonly stats = { batches: 0, units: 0, fallbacks: 0 };

  constructor(
    private readonly db: Db,
    opts: SweepWritesOptions,
    onBatch?: (info: { name: string; size: number; seconds: number; fallback: boolean }) => void,
  ) {
    this.batcher = new Batcher<Write<unknown>, unknown>({
      name: 'sweeper',
      maxSize: opts.maxSize,
      maxWaitMs: opts.maxWaitMs,
      // One batch at a time on SQLite (one writer); two on MariaDB so one fills while the other commits.
      maxInFlight: db.kind === 'sqlite' ? 1 : 2,
      applyBatch: (fns) => this.applyBatch(fns),
      applyOne: (fn) => db.tx(fn),
      onBatch: (info) => {
        this.stats.batches++;
        this.stats.units += info.size;
        if (info.fallback) this.stats.fallbacks++;
        onBatch?.(info);
      },
    });
  }

  /** Runs `fn` in a transaction (shared with other units of work) and resolves once that has committed. */
  write<T>(fn: Write<T>): Promise<T> {
    return this.batcher.submit(fn) as Promise<T>;
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  private applyBatch(fns: Write<unknown>[]): Promise<Outcome<unknown>[]> {
    if (fns.length === 1) return this.db.tx(fns[0]).then(ok, failed);
    return this.db.tx(async (m) => {
      // Built afresh on each try: a deadlock (or a Galera certification failure) reruns the whole transaction.
      const outcomes: Outcome<unknown>[] = [];
      for (const fn of fns) {
        await m.query('SAVEPOINT sweep_unit');
        try {
          outcomes.push({ ok: true, value: await fn(m) });
          await m.query('RELEASE SAVEPOINT sweep_unit');
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          await m.query('ROLLBACK TO SAVEPOINT sweep_unit');
          outcomes.push({ ok: false, error: err });
        }
      }
      return outcomes;
    });
  }
}

const ok = (value: unknown): Outcome<unknown>[] => [{ ok: true, value }];
/** A lone unit already had its transaction (with the deadlock retries): whatever it threw is its answer. */
const failed = (error: unknown): Outcome<unknown>[] => [{ ok: false, error }];
