/**
 * Group commit for hot rows. Concurrent requests for the same kind of work are gathered for a few
 * milliseconds (or until a batch is full) and applied by `applyBatch` in one transaction, so a hot
 * SKU's row is locked and committed once per batch instead of once per request. Every caller is
 * answered only after the transaction that carries its work has committed (or definitely failed).
 *
 * `applyBatch` returns one outcome per input, in input order: a business refusal of one input
 * (a DomainError) is an outcome, not a throw, so it does not fail its neighbours. If the batch as a
 * whole throws (a guard that did not hold, deadlocks past the retries, a bug), nothing of it was
 * committed, and every input is retried on its own through `applyOne`, the unbatched path.
 */
export type Outcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface BatcherOptions<I, O> {
  name: string;
  /** Inputs per transaction at most. */
  maxSize: number;
  /** How long the first input of a batch waits for company. */
  maxWaitMs: number;
  /** Batches in flight at once (1 on SQLite: one writer). */
  maxInFlight: number;
  applyBatch(inputs: I[]): Promise<Outcome<O>[]>;
  applyOne(input: I): Promise<O>;
  /** Called after each batch with its size, duration and whether it fell back to single inputs. */
  onBatch?(info: { name: string; size: number; seconds: number; fallback: boolean }): void;
}

interface Waiter<I, O> {
  input: I;
  resolve(v: O): void;
  reject(e: unknown): void;
}

export class Batcher<I, O> {
  private queue: Waiter<I, O>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: BatcherOptions<I, O>) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length >= this.opts.maxSize) this.flush();
      else if (!this.timer)
        this.timer = setTimeout(() => {
          this.timer = null;
          this.flush();
        }, this.opts.maxWaitMs);
    });
  }

  /** Resolves once nothing is queued or in flight (shutdown, tests). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private flush(): void {
    // A full slot set means the queue keeps filling; the batch that finishes next starts the following one.
    while (this.queue.length > 0 && this.inFlight < this.opts.maxInFlight) {
      const batch = this.queue.splice(0, this.opts.maxSize);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) {
          if (this.queue.length >= this.opts.maxSize || !this.timer) {
            if (this.timer) {
              clearTimeout(this.timer);
              this.timer = null;
            }
            this.flush();
          }
        } else if (this.inFlight === 0) {
          for (const w of this.idleWaiters.splice(0)) w();
        }
      });
    }
    if (this.timer && this.queue.length === 0) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private async run(batch: Waiter<I, O>[]): Promise<void> {
    const started = process.hrtime.bigint();
    let outcomes: Outcome<O>[] | null;
    try {
      outcomes = await this.opts.applyBatch(batch.map((w) => w.input));
      if (outcomes.length !== batch.length)
        throw new Error(`batch ${this.opts.name}: ${outcomes.length} outcomes for ${batch.length} inputs`);
    } catch {
      outcomes = null; // nothing of the batch committed: each input goes again on its own
    }
    if (outcomes) {
      outcomes.forEach((o, i) => (o.ok ? batch[i].resolve(o.value) : batch[i].reject(o.error)));
    } else {
      // One at a time, in arrival order: the unbatched path is the one that has always been right.
      for (const w of batch) {
        try {
          w.resolve(await this.opts.applyOne(w.input));
        } catch (err) {
          w.reject(err);
        }
      }
    }
    this.opts.onBatch?.({
      name: this.opts.name,
      size: batch.length,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      fallback: !outcomes,
    });
  }
}

/** Multi-row INSERT in chunks that stay below both drivers' bound-parameter limits. */
export function multiRowInsert(
  table: string,
  columns: string[],
  rowsOut: unknown[][],
  chunkRows = 400,
): { sql: string; params: unknown[] }[] {
  const out: { sql: string; params: unknown[] }[] = [];
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const cols = columns.map((c) => `\`${c}\``).join(', ');
  for (let i = 0; i < rowsOut.length; i += chunkRows) {
    const chunk = rowsOut.slice(i, i + chunkRows);
    out.push({
      sql: `INSERT INTO ${table} (${cols}) VALUES ${chunk.map(() => tuple).join(', ')}`,
      params: chunk.flat(),
    });
  }
  return out;
}
