/**
 * Receipts are a queue in the database. A job is written in the transaction that makes it due (the
 * paying one, a reprint, a shift close) and printed by the worker after the commit, so a printer
 * that is away or out of paper never holds up a sale: the job waits and is retried.
 *
 * A job's states: queued → printing → printed, printing → queued when the printer is not ready
 * or the line fails, printing → failed when there is nothing to print (cannot be rendered). `printing` is owned by one worker until `claim_until`; after that any
 * worker may take it again (the receipt may then come out twice, which beats not at all).
 * The drawer (`drawer`: due → done) is kicked even while the paper is out: the cashier needs the
 * till to give change, and the receipt follows when the roll is changed.
 */
import { EntityManager } from 'typeorm';
import { Db, Stmt, exec, rows } from '../db/db';
import { audit } from '../audit/audit.service';
import { Clock } from '../shared/clock';
import { Logger } from '../shared/logger';
import { newId } from '../shared/ids';
import { ReceiptDoc, docToEscPos, drawerOnly } from '../receipts/receipt-doc';
import { Printer, PrinterStatus } from './printer';

export type PrintJobKind = 'receipt' | 'reprint' | 'z_report';
export type PrintJobStatus = 'queued' | 'printing' | 'printed' | 'failed';

export interface PrintJob {
  id: string;
  lane: string;
  kind: PrintJobKind;
  orderId: string | null;
  shiftId: string | null;
  drawer: 'due' | 'done' | null;
  status: PrintJobStatus;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  printedAt: number | null;
}

type JobRow = {
  id: string;
  lane: string;
  kind: PrintJobKind;
  order_id: string | null;
  shift_id: string | null;
  drawer: 'due' | 'done' | null;
  status: PrintJobStatus;
  attempts: unknown;
  last_error: string | null;
  created_at: unknown;
  printed_at: unknown;
};

const toJob = (r: JobRow): PrintJob => ({
  id: r.id,
  lane: r.lane,
  kind: r.kind,
  orderId: r.order_id,
  shiftId: r.shift_id,
  drawer: r.drawer,
  status: r.status,
  attempts: Number(r.attempts),
  lastError: r.last_error,
  createdAt: Number(r.created_at),
  printedAt: r.printed_at == null ? null : Number(r.printed_at),
});

export type Renderer = (job: PrintJob) => Promise<ReceiptDoc>;

export interface PrintQueueOptions {
  instanceId: string;
  pollMs: number;
  retryMs: number;
  claimMs: number;
}

/** The INSERT of a queued job; `if_cash_paid` decides the drawer in SQL from the order's approved cash payments. */
function jobStatement(
  job: {
    lane: string;
    kind: PrintJobKind;
    orderId?: string | null;
    shiftId?: string | null;
    drawer?: boolean | 'if_cash_paid';
    actor: string;
  },
  now: number,
): { id: string; stmt: Stmt } {
  const id = newId();
  const cashPaid =
    "CASE WHEN EXISTS (SELECT 1 FROM payment WHERE order_id = ? AND method = 'cash' AND status = 'approved') THEN 'due' ELSE NULL END";
  const byCash = job.drawer === 'if_cash_paid';
  return {
    id,
    stmt: {
      sql: `INSERT INTO print_job (id, lane, kind, order_id, shift_id, drawer, status, attempts, next_try_at, created_by, created_at)
       VALUES (?, ?, ?, ?, ?, ${byCash ? cashPaid : '?'}, 'queued', 0, ?, ?, ?)`,
      params: [
        id,
        job.lane,
        job.kind,
        job.orderId ?? null,
        job.shiftId ?? null,
        byCash ? (job.orderId ?? null) : job.drawer ? 'due' : null,
        now,
        job.actor.slice(0, 64),
        now,
      ],
    },
  };
}

export class PrintQueue {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly lastStatus = new Map<string, { status: PrinterStatus; at: number }>();

  constructor(
    private readonly db: Db,
    private readonly printers: Map<string, Printer>,
    private readonly render: Renderer,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: PrintQueueOptions,
  ) {}

  /** In the caller's transaction: no I/O here, the worker prints after the commit. */
  async enqueueIn(
    m: EntityManager,
    job: {
      lane: string;
      kind: PrintJobKind;
      orderId?: string | null;
      shiftId?: string | null;
      drawer?: boolean;
      actor: string;
    },
    now: number,
  ): Promise<string> {
    const { id, stmt } = jobStatement(job, now);
    await exec(m, stmt.sql, stmt.params);
    return id;
  }

  /**
   * The receipt of an order that is being paid, as a statement for the paying transaction (db.runAll):
   * no read first, the drawer is due when the order has an approved cash payment by then (the
   * payment rows are written before it in that transaction).
   */
  receiptStatement(job: { lane: string; orderId: string; actor: string }, now: number): Stmt {
    return jobStatement({ ...job, kind: 'receipt', drawer: 'if_cash_paid' }, now).stmt;
  }

  /** A job a person asked for (a reprint): audited, since a second receipt is worth knowing about. */
  async enqueue(job: {
    lane: string;
    kind: PrintJobKind;
    orderId?: string | null;
    shiftId?: string | null;
    drawer?: boolean;
    actor: string;
  }): Promise<string> {
    const id = await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const jobId = await this.enqueueIn(m, job, now);
      await audit(m, {
        actor: job.actor,
        entity: 'print_job',
        entityId: jobId,
        action: job.kind,
        after: { lane: job.lane, orderId: job.orderId ?? null, shiftId: job.shiftId ?? null },
        at: now,
      });
      return jobId;
    });
    this.poke();
    return id;
  }

  async jobsOf(orderId: string): Promise<PrintJob[]> {
    return (
      await this.db.read((m) =>
        rows<JobRow>(m, 'SELECT * FROM print_job WHERE order_id = ? ORDER BY created_at, id', [orderId]),
      )
    ).map(toJob);
  }

  async laneSummary(
    lane: string,
  ): Promise<{ queued: number; oldestQueuedAt: string | null; lastError: string | null }> {
    const [r] = await this.db.read((m) =>
      rows<{ n: unknown; oldest: unknown }>(
        m,
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM print_job WHERE lane = ? AND status IN ('queued', 'printing')",
        [lane],
      ),
    );
    const [last] = await this.db.read((m) =>
      rows<{ last_error: string | null }>(
        m,
        "SELECT last_error FROM print_job WHERE lane = ? AND status IN ('queued', 'printing') ORDER BY created_at LIMIT 1",
        [lane],
      ),
    );
    return {
      queued: Number(r?.n ?? 0),
      oldestQueuedAt: r?.oldest == null ? null : new Date(Number(r.oldest)).toISOString(),
      lastError: last?.last_error ?? null,
    };
  }

  lanes(): string[] {
    return [...this.printers.keys()].sort();
  }

  /** Asks the printer now (DLE EOT); `away` when the lane has none configured. */
  async printerStatus(lane: string): Promise<PrinterStatus & { configured: boolean }> {
    const p = this.printers.get(lane);
    if (!p) return { state: 'away', paperNearEnd: false, configured: false };
    const status = await p.status();
    this.lastStatus.set(lane, { status, at: Date.now() });
    return { ...status, configured: true };
  }

  start(): void {
    if (this.printers.size === 0 || this.timer) return;
    this.timer = setInterval(() => this.poke(), this.opts.pollMs);
    this.timer.unref?.();
  }

  /** Runs a pass soon; passes never overlap. */
  poke(): void {
    if (this.stopped || this.running) return;
    this.running = this.drain()
      .catch((err) => this.log.error('print queue pass failed', { err: String(err) }))
      .finally(() => {
        this.running = null;
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass: each lane prints its due jobs in order until one has to wait. */
  async drain(): Promise<void> {
    await Promise.all([...this.printers.entries()].map(([lane, printer]) => this.drainLane(lane, printer)));
  }

  private async drainLane(lane: string, printer: Printer): Promise<void> {
    // Without the line (unplugged, or another instance holds the device) claiming jobs would only delay whoever can print them.
    if (!printer.isConnected()) return;
    for (let i = 0; i < 50 && !this.stopped; i++) {
      const job = await this.claimNext(lane);
      if (!job) return;
      const printed = await this.printOne(printer, job);
      if (!printed) return;
    }
  }

  /** The lane's oldest unprinted job, if it is due: receipts come out in the order they were owed. */
  private async claimNext(lane: string): Promise<PrintJob | null> {
    const now = this.clock.now().getTime();
    const [next] = await this.db.read((m) =>
      rows<JobRow & { next_try_at: unknown; claim_until: unknown }>(
        m,
        `SELECT * FROM print_job WHERE lane = ? AND status IN ('queued', 'printing') ORDER BY created_at, id LIMIT 1`,
        [lane],
      ),
    );
    if (next && next.status === 'queued' && Number(next.next_try_at) > now) return null;
    if (next && next.status === 'printing' && Number(next.claim_until) >= now) return null;
    if (!next) return null;
    const n = await this.db.tx((m) =>
      exec(
        m,
        `UPDATE print_job SET status = 'printing', claimed_by = ?, claim_until = ?, attempts = attempts + 1
        WHERE id = ? AND (status = 'queued' OR (status = 'printing' AND claim_until < ?))`,
        [this.opts.instanceId.slice(0, 64), now + this.opts.claimMs, next.id, now],
      ),
    );
    return n === 1 ? toJob({ ...next, status: 'printing', attempts: Number(next.attempts) + 1 }) : null;
  }

  /** Prints one claimed job; false when it had to go back to the queue (the lane waits). */
  private async printOne(printer: Printer, job: PrintJob): Promise<boolean> {
    let doc: ReceiptDoc;
    try {
      doc = await this.render(job);
    } catch (err) {
      // Nothing a printer can fix, and it must not hold up the lane's other receipts: `failed` is
      // final and visible (GET /v1/printers/:lane); a reprint queues a new job.
      await this.db.tx((m) =>
        exec(
          m,
          "UPDATE print_job SET status = 'failed', last_error = ?, claimed_by = NULL, claim_until = NULL WHERE id = ? AND status = 'printing'",
          [`cannot render: ${String((err as Error).message ?? err)}`.slice(0, 255), job.id],
        ),
      );
      return true;
    }
    const status = await printer.status().catch(() => ({ state: 'away' as const, paperNearEnd: false }));
    this.lastStatus.set(job.lane, { status, at: Date.now() });
    try {
      if (status.state !== 'ready') {
        if (job.drawer === 'due' && status.state !== 'away') {
          await printer.print(drawerOnly());
          await this.db.tx((m) =>
            exec(m, "UPDATE print_job SET drawer = 'done' WHERE id = ? AND drawer = 'due'", [job.id]),
          );
        }
        await this.requeue(job, `printer ${status.state.replace('_', ' ')}`, this.opts.retryMs);
        return false;
      }
      await printer.print(docToEscPos(doc, { drawerKick: job.drawer === 'due' }));
    } catch (err) {
      await this.requeue(job, `print failed: ${String((err as Error).message ?? err)}`, this.opts.retryMs);
      return false;
    }
    const now = this.clock.now().getTime();
    await this.db.tx((m) =>
      exec(
        m,
        `UPDATE print_job SET status = 'printed', printed_at = ?, drawer = CASE WHEN drawer IS NULL THEN NULL ELSE 'done' END, claimed_by = NULL, claim_until = NULL, last_error = NULL
        WHERE id = ? AND status = 'printing'`,
        [now, job.id],
      ),
    );
    return true;
  }

  private async requeue(job: PrintJob, error: string, afterMs: number): Promise<void> {
    const now = this.clock.now().getTime();
    await this.db.tx((m) =>
      exec(
        m,
        `UPDATE print_job SET status = 'queued', next_try_at = ?, last_error = ?, claimed_by = NULL, claim_until = NULL WHERE id = ? AND status = 'printing'`,
        [now + afterMs, error.slice(0, 255), job.id],
      ),
    );
  }
}
