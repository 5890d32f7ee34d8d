/**
 * T+1 reconciliation (对账): the acquirer's settlement file for a settle day against our card
 * payments. A run reads the file streamed, classifies every line and every payment of ours the
 * file lacks, and only when the file adds up to its own control totals applies the few automatic
 * actions (each once, ever, through recon_action). Re-runs of a day supersede the earlier runs,
 * which are kept; resolutions are keyed by item so they outlive re-runs.
 */
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { EntityManager } from 'typeorm';
import { audit } from '../audit/audit.service';
import { Db, exec, placeholders, rows } from '../db/db';
import { Clock } from '../shared/clock';
import { conflict, DomainError, notFound, unprocessable } from '../shared/errors';
import { newId } from '../shared/ids';
import { Logger, silentLogger } from '../shared/logger';
import { PaymentsService } from '../payments/payments.service';
import { moveLeg } from '../returns/leg-state';
import { ReconFileSource } from '../acquirer/acp-file';
import { readReconZip, sha256OfFile, ZmRecord } from './recon-zip';
import { addDays, compact, mmdd, settleDayAt, txnTimeRange } from './settle-day';
import { isReversingType } from './zm-format';

export type ReconClass = 'matched' | 'amount_mismatch' | 'acquirer_only' | 'ours_only' | 'pending_cutoff';
export const RECON_CLASSES: readonly ReconClass[] = [
  'matched',
  'amount_mismatch',
  'acquirer_only',
  'ours_only',
  'pending_cutoff',
];
export type RunStatus = 'waiting' | 'running' | 'done' | 'refused';
export type RunSource = 'download' | 'upload' | 'cron';
export type ResolveAction = 'accept_acquirer' | 'accept_ours' | 'chase';
/** What the file does by itself: approve an unknown we find settled, decline one absent to T+2, dispute a failure that was settled. */
/** `settle_refund`: a refund leg of ours left unknown, which the acquirer's file shows it settled. */
type AutoAction = 'approve' | 'decline' | 'dispute' | 'settle_refund';

export interface RunView {
  id: string;
  settleDate: string;
  merId: string | null;
  status: RunStatus;
  source: RunSource;
  latest: boolean;
  file: { name: string | null; sha256: string | null; lines: number | null };
  totals: { count: number; amountFen: number; feeFen: number; netFen: number } | null;
  counts: { matched: number; amountMismatch: number; acquirerOnly: number; oursOnly: number; pendingCutoff: number };
  problem: unknown;
  attempts: number;
  nextTryAt: string | null;
  createdBy: string;
  createdAt: string;
  finishedAt: string | null;
}

export interface ItemView {
  id: number;
  runId: string;
  class: ReconClass;
  rf: string | null;
  paymentId: string | null;
  ourStatus: string | null;
  ourAmountFen: number | null;
  acquirerAmountFen: number | null;
  txnType: string | null;
  queryId: string | null;
  origQueryId: string | null;
  traceNo: string | null;
  terminalId: string | null;
  txnTime: string | null;
  settleDate: string;
  lineNo: number | null;
  note: string | null;
  action: { kind: AutoAction; state: string } | null;
  resolution: { action: ResolveAction; note: string | null; by: string; at: string } | null;
}

interface RunRow {
  id: string;
  settle_date: string;
  mer_id: string | null;
  status: RunStatus;
  source: RunSource;
  latest: unknown;
  file_name: string | null;
  file_sha256: string | null;
  file_lines: unknown;
  total_count: unknown;
  total_amount_fen: unknown;
  total_fee_fen: unknown;
  total_net_fen: unknown;
  n_matched: unknown;
  n_amount_mismatch: unknown;
  n_acquirer_only: unknown;
  n_ours_only: unknown;
  n_pending_cutoff: unknown;
  problem: string | null;
  attempts: unknown;
  next_try_at: unknown;
  claim_until: unknown;
  created_by: string;
  created_at: unknown;
  finished_at: unknown;
}

interface ItemRow {
  id: unknown;
  run_id: string;
  settle_date: string;
  class: ReconClass;
  item_key: string;
  line_no: unknown;
  rf: string | null;
  payment_id: string | null;
  our_status: string | null;
  our_amount_fen: unknown;
  acquirer_amount_fen: unknown;
  txn_type: string | null;
  query_id: string | null;
  orig_query_id: string | null;
  trace_no: string | null;
  terminal_id: string | null;
  txn_time: string | null;
  action: AutoAction | null;
  action_state: string | null;
  note: string | null;
  r_action?: ResolveAction | null;
  r_note?: string | null;
  r_by?: string | null;
  r_at?: unknown;
}

type NewItem = Omit<ItemRow, 'id' | 'r_action' | 'r_note' | 'r_by' | 'r_at'>;

interface PaymentRow {
  id: string;
  status: string;
  amount_fen: unknown;
  rf: string | null;
  terminal_id: string | null;
  trace_no: string | null;
  query_id: string | null;
  refund_state: string | null;
  refund_fen: unknown;
  txn_time: string | null;
}

interface SaleRow extends PaymentRow {
  /** The status the payment had when a reconciliation approved it, if one did. */
  approved_from: string | null;
}

interface LegRow {
  id: string;
  payment_id: string;
  amount_fen: unknown;
  status: string;
  rf: string | null;
  /** The status the leg had when a reconciliation settled it, if one did (a re-run classifies as the first run). */
  settled_from: string | null;
}

const num = (v: unknown): number => Number(v);
const legIdOf = (it: { item_key: string }): string => it.item_key.slice('refund:'.length);
const numOrNull = (v: unknown): number | null => (v == null ? null : Number(v));
const iso = (v: unknown): string | null => (v == null ? null : new Date(Number(v)).toISOString());
const ITEM_COLS = [
  'run_id',
  'settle_date',
  'class',
  'item_key',
  'line_no',
  'rf',
  'payment_id',
  'our_status',
  'our_amount_fen',
  'acquirer_amount_fen',
  'txn_type',
  'query_id',
  'orig_query_id',
  'trace_no',
  'terminal_id',
  'txn_time',
  'action',
  'action_state',
  'note',
] as const;
const PAYMENT_COLS = 'id, status, amount_fen, rf, terminal_id, trace_no, query_id, refund_state, refund_fen, txn_time';
/**
 * A sale's payment with what it was before the file approved it, when a run did (a re-run classifies
 * the line as the first run did): one join instead of a second round trip per batch.
 */
const SALE_LOOKUP = `SELECT ${PAYMENT_COLS.split(', ')
  .map((c) => `p.${c}`)
  .join(', ')}, a.from_status AS approved_from
  FROM payment p LEFT JOIN recon_action a ON a.payment_id = p.id AND a.action = 'approve' AND a.state = 'applied'
  WHERE p.method = 'card'`;
/** A run's claim lapsed and went to another attempt while this process was working it. */
class RunLostError extends Error {
  constructor(runId: string) {
    super(`reconciliation run ${runId} is no longer this process's`);
  }
}

/** The actor of everything the file does by itself. */
export const RECON_ACTOR = 'system:recon';
const CLAIM_MS = 30 * 60_000;
const LIVE = new Set(['unknown', 'suspense']);
const FAILED = new Set(['declined', 'reversed', 'disputed']);

export interface ReconOptions {
  /** Largest upload accepted, in bytes. */
  maxUploadBytes?: number;
  batchSize?: number;
  log?: Logger;
}

export class ReconciliationService {
  private readonly log: Logger;
  private readonly batchSize: number;
  private refundLegs: boolean | null = null;
  /**
   * The runs this process is working, with the claim they hold (the run's `attempts` when it was claimed).
   * Every write of a run renews its claim and checks it is still this one: a run whose claim lapsed was
   * handed to another attempt by retryDue, and the old worker must neither add items nor finish it.
   */
  private readonly owned = new Map<string, number>();
  readonly maxUploadBytes: number;

  constructor(
    private readonly db: Db,
    private readonly payments: PaymentsService,
    private readonly files: ReconFileSource | null,
    private readonly clock: Clock,
    opts: ReconOptions = {},
  ) {
    this.log = opts.log ?? silentLogger;
    // Lines per database batch. MySQL works two batches at once (see process), so each is half as big:
    // the lines held in memory stay about the same (peak RSS in bench:recon).
    this.batchSize = opts.batchSize ?? (db.kind === 'mysql' ? 2500 : 5000);
    this.maxUploadBytes = opts.maxUploadBytes ?? 1024 * 1024 * 1024;
  }

  /** The settle day before the one in progress: what the daily run asks for. */
  previousSettleDay(): string {
    return addDays(settleDayAt(this.clock.now()), -1);
  }

  // ---------------------------------------------------------------- starting runs

  /** Downloads the day's file and runs it; the acquirer's 98 (or no verified answer) leaves the run `waiting`. */
  async requestDownload(day: string, actor: string, source: 'download' | 'cron' = 'download'): Promise<RunView> {
    if (!this.files)
      throw unprocessable(
        'no_acquirer',
        'no acquirer is configured to download the file from; upload it as application/zip',
      );
    const waiting = await this.db.read((m) =>
      rows<{ id: string }>(
        m,
        "SELECT id FROM recon_run WHERE settle_date = ? AND status = 'waiting' ORDER BY created_at DESC",
        [day],
      ),
    );
    const id = waiting[0]?.id ?? (await this.newRun(day, source, 'waiting', actor));
    return this.attempt(id);
  }

  /** A file a store received another way, streamed to disk first (never held in memory). */
  async upload(day: string, body: Readable, actor: string): Promise<RunView> {
    const dir = mkdtempSync(join(tmpdir(), 'pos-recon-'));
    try {
      const path = join(dir, 'file.zip');
      let size = 0;
      const limit = this.maxUploadBytes;
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            size += chunk.length;
            if (size > limit) cb(new DomainError(413, 'payload_too_large', `the file is larger than ${limit} bytes`));
            else cb(null, chunk);
          },
        }),
        createWriteStream(path),
      );
      if (size === 0) throw new DomainError(400, 'invalid_request', "send the acquirer's ZIP as the request body");
      const id = await this.newRun(day, 'upload', 'running', actor);
      await this.process(id, day, path);
      return this.run(id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private async newRun(day: string, source: RunSource, status: RunStatus, actor: string): Promise<string> {
    const now = this.clock.now().getTime();
    const id = newId();
    await this.db.tx(async (m) => {
      const busy = await rows<{ id: string }>(
        m,
        "SELECT id FROM recon_run WHERE settle_date = ? AND status = 'running' AND claim_until > ?",
        [day, now],
      );
      if (busy.length)
        throw conflict(
          'reconciliation_running',
          `settle day ${day} is being reconciled right now; try again when that run ends`,
          { runId: busy[0].id },
        );
      await exec(
        m,
        `INSERT INTO recon_run (id, settle_date, mer_id, status, source, latest, created_by, created_at, updated_at, attempts, next_try_at, claim_until)
        VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, 0, ?, ?)`,
        [
          id,
          day,
          this.files?.merId ?? null,
          status,
          source,
          actor,
          now,
          now,
          status === 'waiting' ? now : null,
          status === 'running' ? now + CLAIM_MS : null,
        ],
      );
      await audit(m, {
        actor,
        entity: 'reconciliation',
        entityId: id,
        action: 'request',
        after: { settleDate: day, source },
        at: now,
      });
    });
    return id;
  }

  /** One download attempt for a waiting run (claimed first, so two instances never both run it). */
  async attempt(id: string): Promise<RunView> {
    const now = this.clock.now().getTime();
    const claimed = await this.db.tx((m) =>
      exec(
        m,
        "UPDATE recon_run SET status = 'running', attempts = attempts + 1, claim_until = ?, updated_at = ? WHERE id = ? AND status = 'waiting'",
        [now + CLAIM_MS, now, id],
      ),
    );
    if (claimed !== 1) return this.run(id);
    const r = await this.runRow(id);
    const dl = await this.files!.download(mmdd(r.settle_date));
    if (dl.kind !== 'file') {
      const attempts = num(r.attempts); // already counts this one
      // Files appear in the morning: ask again in 5, 10, 20, 40, then every 60 minutes.
      const next = this.clock.now().getTime() + Math.min(60, 5 * 2 ** (attempts - 1)) * 60_000;
      const problem =
        dl.kind === 'not_yet'
          ? { reason: 'the acquirer has no file for this day yet', respCode: dl.respCode }
          : { reason: dl.reason };
      await this.db.tx((m) =>
        exec(
          m,
          "UPDATE recon_run SET status = 'waiting', next_try_at = ?, claim_until = NULL, problem = ?, updated_at = ? WHERE id = ? AND status = 'running'",
          [next, JSON.stringify(problem), this.clock.now().getTime(), id],
        ),
      );
      this.log.info('reconciliation file not there yet', { runId: id, settleDate: r.settle_date, ...problem });
      return this.run(id);
    }
    const dir = mkdtempSync(join(tmpdir(), 'pos-recon-'));
    try {
      const path = join(dir, 'file.zip');
      writeFileSync(path, dl.zip);
      await this.process(id, r.settle_date, path, dl.fileName);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return this.run(id);
  }

  /** The retry job: waiting runs that are due, runs whose owner died, actions left due by a crash. */
  async retryDue(): Promise<{ attempted: number; released: number; actions: number }> {
    const now = this.clock.now().getTime();
    const stale = await this.db.read((m) =>
      rows<{ id: string; source: RunSource }>(
        m,
        "SELECT id, source FROM recon_run WHERE status = 'running' AND claim_until < ?",
        [now],
      ),
    );
    for (const s of stale) {
      await this.db.tx(async (m) => {
        await exec(m, 'DELETE FROM recon_item WHERE run_id = ?', [s.id]);
        // An upload's file is gone with the process that held it: only a person can send it again.
        if (s.source === 'upload') {
          await exec(
            m,
            "UPDATE recon_run SET status = 'refused', problem = ?, claim_until = NULL, updated_at = ? WHERE id = ? AND status = 'running'",
            [JSON.stringify({ reason: 'interrupted while running; upload the file again' }), now, s.id],
          );
        } else {
          await exec(
            m,
            "UPDATE recon_run SET status = 'waiting', next_try_at = ?, claim_until = NULL, updated_at = ? WHERE id = ? AND status = 'running'",
            [now, now, s.id],
          );
        }
      });
    }
    let attempted = 0;
    if (this.files) {
      const due = await this.db.read((m) =>
        rows<{ id: string }>(
          m,
          "SELECT id FROM recon_run WHERE status = 'waiting' AND next_try_at <= ? ORDER BY next_try_at",
          [now],
        ),
      );
      for (const d of due) {
        await this.attempt(d.id);
        attempted++;
      }
    }
    const latest = await this.db.read((m) =>
      rows<{ id: string }>(m, "SELECT DISTINCT run_id AS id FROM recon_item WHERE action_state = 'due'"),
    );
    let actions = 0;
    for (const r of latest) actions += await this.applyActions([r.id]);
    return { attempted, released: stale.length, actions };
  }

  // ---------------------------------------------------------------- one run

  /** Works a claimed run; a run whose claim was lost meanwhile is left to its new owner (logged, not thrown). */
  private async process(id: string, day: string, path: string, fileName?: string): Promise<void> {
    const claim = num((await this.runRow(id)).attempts);
    this.owned.set(id, claim);
    try {
      await this.processOwned(id, day, path, fileName);
    } catch (err) {
      if (!(err instanceof RunLostError)) throw err;
      this.log.warn('reconciliation run lost its claim while running; left to its new attempt', { runId: id });
    } finally {
      this.owned.delete(id);
    }
  }

  /** Renews the run's claim inside `m`'s transaction; throws RunLostError when it is no longer this process's. */
  private async holdClaim(m: EntityManager, id: string): Promise<void> {
    const claim = this.owned.get(id);
    if (claim === undefined) throw new RunLostError(id);
    const n = await exec(
      m,
      "UPDATE recon_run SET claim_until = ? WHERE id = ? AND status = 'running' AND attempts = ?",
      [this.clock.now().getTime() + CLAIM_MS, id, claim],
    );
    if (n !== 1) throw new RunLostError(id);
  }

  private async processOwned(id: string, day: string, path: string, fileName?: string): Promise<void> {
    const started = Date.now();
    const phases: Record<string, number> = {};
    const lap = (name: string) => {
      phases[name] = Date.now() - started - Object.values(phases).reduce((a, b) => a + b, 0);
    };
    const sha = await sha256OfFile(path);
    // Batches go to the database while the next is read and parsed: on MySQL two at a time on two
    // connections (the server works one while the other's rows travel), on SQLite one (one writer).
    // Batches are independent (each line is its own item), so their order does not matter.
    const depth = this.db.kind === 'mysql' ? 2 : 1;
    const inflight = new Set<Promise<void>>();
    let failed: unknown = null;
    const res = await readReconZip(
      path,
      async (batch) => {
        while (inflight.size >= depth) await Promise.race(inflight);
        if (failed) throw failed;
        const p: Promise<void> = this.matchBatch(id, day, batch).then(
          () => void inflight.delete(p),
          (err: unknown) => {
            failed ??= err;
            inflight.delete(p);
          },
        );
        inflight.add(p);
      },
      this.batchSize,
    );
    await Promise.all(inflight);
    if (failed) throw failed;
    lap('readAndMatchMs');
    const problems: Record<string, unknown> = {};
    if (res.problems.length) problems.problems = res.problems;
    if (res.rd && (res.rd.count !== res.detail.count || res.rd.amountFen !== res.detail.amountFen)) {
      problems.reason = 'the detail lines do not add up to the RD report';
      problems.difference = {
        count: res.detail.count - res.rd.count,
        amountFen: res.detail.amountFen - res.rd.amountFen,
      };
      problems.detail = res.detail;
      problems.report = res.rd;
    }
    if (this.files && res.merId && res.merId !== this.files.merId)
      problems.merId = `the file is for merchant ${res.merId}, we are ${this.files.merId}`;
    const now = () => this.clock.now().getTime();
    const fileCols = [
      fileName ?? res.zmName,
      sha,
      res.lines,
      res.detail.count,
      res.detail.amountFen,
      res.detail.feeFen,
      res.detail.netFen,
    ];
    if (Object.keys(problems).length) {
      if (!problems.reason)
        problems.reason = problems.problems ? 'the file cannot be read whole' : 'the file is for another merchant';
      await this.db.tx(async (m) => {
        await this.holdClaim(m, id);
        await exec(m, 'DELETE FROM recon_item WHERE run_id = ?', [id]);
        await exec(
          m,
          `UPDATE recon_run SET status = 'refused', problem = ?, file_name = ?, file_sha256 = ?, file_lines = ?, total_count = ?, total_amount_fen = ?,
          total_fee_fen = ?, total_net_fen = ?, mer_id = COALESCE(?, mer_id), claim_until = NULL, finished_at = ?, updated_at = ? WHERE id = ?`,
          [JSON.stringify(problems), ...fileCols, res.merId, now(), now(), id],
        );
        await audit(m, {
          actor: RECON_ACTOR,
          entity: 'reconciliation',
          entityId: id,
          action: 'refuse',
          after: problems,
          at: now(),
        });
      });
      this.log.warn('reconciliation file refused', { runId: id, settleDate: day, ...problems });
      return;
    }
    const window = await this.windowRuns(day, id);
    await this.expectOurs(id, day, window);
    lap('oursMs');
    const carried: string[] = [];
    for (const x of [addDays(day, -1), addDays(day, -2)]) {
      const rx = window.get(x);
      if (rx && rx !== id && (await this.carryPending(rx, x, day, window))) carried.push(rx);
    }
    await this.db.tx(async (m) => {
      await this.holdClaim(m, id);
      await exec(m, 'UPDATE recon_run SET latest = 0 WHERE settle_date = ? AND id <> ?', [day, id]);
      await exec(
        m,
        `UPDATE recon_run SET status = 'done', latest = 1, problem = NULL, file_name = ?, file_sha256 = ?, file_lines = ?, total_count = ?, total_amount_fen = ?,
        total_fee_fen = ?, total_net_fen = ?, mer_id = COALESCE(?, mer_id), claim_until = NULL, finished_at = ?, updated_at = ? WHERE id = ?`,
        [...fileCols, res.merId, now(), now(), id],
      );
      await this.recount(m, id);
      for (const c of carried) await this.recount(m, c);
      await audit(m, {
        actor: RECON_ACTOR,
        entity: 'reconciliation',
        entityId: id,
        action: 'done',
        after: { settleDate: day, lines: res.lines, sha256: sha },
        at: now(),
      });
    });
    lap('carryAndFinishMs');
    await this.applyActions([id, ...carried]);
    lap('actionsMs');
    this.log.info('reconciliation run done', { runId: id, settleDate: day, lines: res.lines, ...phases });
  }

  /** The latest done run of each day from D−2 to D+2, this run standing for D. */
  private async windowRuns(day: string, currentId: string): Promise<Map<string, string>> {
    const days = [-2, -1, 1, 2].map((n) => addDays(day, n));
    const found = await this.db.read((m) =>
      rows<{ id: string; settle_date: string }>(
        m,
        `SELECT id, settle_date FROM recon_run WHERE latest = 1 AND status = 'done' AND settle_date IN (${placeholders(days.length)})`,
        days,
      ),
    );
    const w = new Map(found.map((r) => [r.settle_date, r.id]));
    w.set(day, currentId);
    return w;
  }

  /** Every day of [x, x+2] has its file run: an absence there is final. */
  private complete(x: string, window: Map<string, string>): boolean {
    return [0, 1, 2].every((n) => window.has(addDays(x, n)));
  }

  /** Whether the returns capability's refund legs exist in this database (they come with its migration). */
  private async hasRefundLegs(m: EntityManager): Promise<boolean> {
    if (this.refundLegs === null) {
      try {
        await rows(m, 'SELECT id FROM refund_leg WHERE 1 = 0');
        this.refundLegs = true;
      } catch {
        return false; // asked again next time: the table may be migrated in later
      }
    }
    return this.refundLegs;
  }

  /** Classifies a batch of file lines against our payments and stores them as items. */
  private async matchBatch(runId: string, day: string, batch: ZmRecord[]): Promise<void> {
    const sales = batch.filter((b) => !isReversingType(b.line.txnType));
    const refunds = batch.filter((b) => isReversingType(b.line.txnType));
    const found = await this.db.read(async (m) => {
      const rfs = [...new Set(sales.map((s) => s.line.rf).filter(Boolean))];
      const byRf = rfs.length
        ? await rows<SaleRow>(m, `${SALE_LOOKUP} AND p.rf IN (${placeholders(rfs.length)})`, rfs)
        : [];
      const rfMap = new Map(byRf.map((p) => [p.rf!, p]));
      // Second key: a line whose order id we do not know may still be ours by terminal + trace + amount.
      const rest = sales.filter((s) => !rfMap.has(s.line.rf) && s.line.terminalId && s.line.traceNo);
      const traces = [...new Set(rest.map((s) => s.line.traceNo))];
      const byTrace = traces.length
        ? await rows<SaleRow>(m, `${SALE_LOOKUP} AND p.trace_no IN (${placeholders(traces.length)})`, traces)
        : [];
      const qids = [...new Set(refunds.map((r) => r.line.origQueryId).filter(Boolean))];
      const byQid = qids.length
        ? await rows<PaymentRow>(
            m,
            `SELECT ${PAYMENT_COLS} FROM payment WHERE method = 'card' AND query_id IN (${placeholders(qids.length)})`,
            qids,
          )
        : [];
      // Refund legs (the returns capability's table, when it is there): by the refund's own RF, else through the sale.
      let legs: LegRow[] = [];
      if (refunds.length && (await this.hasRefundLegs(m))) {
        const legRfs = [...new Set(refunds.map((r) => r.line.rf).filter(Boolean))];
        const salesIds = byQid.map((p) => p.id);
        const keys = [...legRfs, ...salesIds];
        if (keys.length) {
          legs = await rows<LegRow>(
            m,
            `SELECT l.id, l.payment_id, l.amount_fen, l.status, l.rf, a.from_status AS settled_from FROM refund_leg l
            LEFT JOIN recon_action a ON a.payment_id = l.id AND a.action = 'settle_refund' AND a.state = 'applied'
            WHERE l.method = 'card' AND (l.rf IN (${placeholders(Math.max(legRfs.length, 1))}) OR l.payment_id IN (${placeholders(Math.max(salesIds.length, 1))}))`,
            [...(legRfs.length ? legRfs : ['']), ...(salesIds.length ? salesIds : [''])],
          );
        }
      }
      return { rfMap, byTrace, byQid, legs };
    });
    const items: NewItem[] = [];
    for (const { lineNo, line } of batch) {
      const base: NewItem = {
        run_id: runId,
        settle_date: day,
        class: 'acquirer_only',
        item_key: '',
        line_no: lineNo,
        rf: line.rf || null,
        payment_id: null,
        our_status: null,
        our_amount_fen: null,
        acquirer_amount_fen: line.amountFen,
        txn_type: line.txnType || null,
        query_id: line.queryId || null,
        orig_query_id: line.origQueryId || null,
        trace_no: line.traceNo || null,
        terminal_id: line.terminalId || null,
        txn_time: line.txnTime || null,
        action: null,
        action_state: null,
        note: null,
      };
      const lineKey = `line:${line.txnType}:${line.queryId || line.rf || `${line.terminalId}/${line.traceNo}/${line.txnTime}`}`;
      if (isReversingType(line.txnType)) {
        const p = line.origQueryId ? found.byQid.find((q) => q.query_id === line.origQueryId) : undefined;
        const leg =
          (line.rf ? found.legs.find((l) => l.rf === line.rf) : undefined) ??
          (p
            ? found.legs.find(
                (l) => l.payment_id === p.id && l.status === 'approved' && num(l.amount_fen) === line.amountFen,
              )
            : undefined);
        if (leg) {
          const legStatus = leg.settled_from?.replace(/^refund_/, '') ?? leg.status; // the ledger keeps the item's status
          const item = {
            ...base,
            item_key: `refund:${leg.id}`,
            payment_id: leg.payment_id,
            our_status: `refund_${legStatus}`,
            our_amount_fen: num(leg.amount_fen),
          };
          if (legStatus === 'approved' && num(leg.amount_fen) === line.amountFen)
            items.push({ ...item, class: 'matched' });
          else if (legStatus === 'unknown' && num(leg.amount_fen) === line.amountFen)
            // Neither the terminal nor the acquirer's query could say; the file can: the money went back.
            items.push({
              ...item,
              action: 'settle_refund',
              action_state: 'due',
              note: 'the acquirer settled this refund: approved by the file',
            });
          else if (legStatus === 'approved')
            items.push({
              ...item,
              class: 'amount_mismatch',
              note: 'the refund the acquirer settled differs from our refund leg',
            });
          else items.push({ ...item, note: `the acquirer settled a refund our refund leg has as ${leg.status}` });
          continue;
        }
        if (!p) {
          items.push({
            ...base,
            item_key: lineKey,
            note: 'a refund or void of a sale we cannot find by its original query id',
          });
          continue;
        }
        const owed = numOrNull(p.refund_fen);
        const item = {
          ...base,
          item_key: `refund:${p.id}:${line.queryId}`,
          payment_id: p.id,
          rf: p.rf,
          our_status: p.refund_state ? `refund_${p.refund_state}` : p.status,
          our_amount_fen: owed,
        };
        if (p.refund_state === 'done' && owed === line.amountFen) items.push({ ...item, class: 'matched' });
        else if (p.refund_state === 'done')
          items.push({ ...item, class: 'amount_mismatch', note: 'the refund the acquirer settled differs from ours' });
        else items.push({ ...item, note: 'a refund or void we have not recorded as done' });
        continue;
      }
      const p =
        found.rfMap.get(line.rf) ??
        found.byTrace.find(
          (q) =>
            q.terminal_id === line.terminalId && q.trace_no === line.traceNo && num(q.amount_fen) === line.amountFen,
        );
      if (!p) {
        items.push({ ...base, item_key: lineKey, note: 'an order id we never issued' });
        continue;
      }
      // What the payment was before the file acted on it, so a re-run classifies the line as the first run did.
      const status = p.approved_from ?? p.status;
      const ours = num(p.amount_fen);
      const item: NewItem = {
        ...base,
        item_key: `pay:${p.id}`,
        payment_id: p.id,
        rf: p.rf,
        our_status: status,
        our_amount_fen: ours,
      };
      if (ours !== line.amountFen)
        items.push({ ...item, class: 'amount_mismatch', note: 'the acquirer settled a different amount' });
      else if (status === 'approved') items.push({ ...item, class: 'matched' });
      else if (LIVE.has(status))
        items.push({
          ...item,
          action: 'approve',
          action_state: 'due',
          note: 'settled by the acquirer: approved by the file',
        });
      else if (FAILED.has(status))
        items.push({
          ...item,
          action: 'dispute',
          action_state: 'due',
          note: 'settled by the acquirer although we recorded a failure',
        });
      else items.push({ ...item, note: `the payment is ${status} here` });
    }
    await this.insertItems(items);
  }

  private async insertItems(items: NewItem[]): Promise<void> {
    if (!items.length) return;
    const row = `(${placeholders(ITEM_COLS.length)})`;
    await this.db.tx(async (m) => {
      for (let i = 0; i < items.length; i += 1000) {
        const chunk = items.slice(i, i + 1000);
        await exec(
          m,
          `INSERT INTO recon_item (${ITEM_COLS.join(', ')}) VALUES ${chunk.map(() => row).join(', ')}`,
          chunk.flatMap((it) => ITEM_COLS.map((c) => it[c])),
        );
      }
      // Last, so two batches in flight hold the run's row only from here to their commits.
      await this.holdClaim(m, String(items[0].run_id));
    });
  }

  /**
   * Our card payments that belong to the day (the acquirer's settleDate when we know it, the
   * attempt time by the 23:00 cut-off otherwise) and are in none of the window's files.
   */
  private async expectOurs(runId: string, day: string, window: Map<string, string>): Promise<void> {
    const range = txnTimeRange(day);
    const near = { from: `${compact(addDays(day, -3))}000000`, to: `${compact(addDays(day, 2))}000000` };
    const runIds = [...window.values()];
    const final = this.complete(day, window);
    let after = '';
    for (;;) {
      const page = await this.db.read((m) =>
        rows<PaymentRow & { declined_from: string | null }>(
          m,
          `SELECT p.id, p.status, p.amount_fen, p.rf, p.terminal_id, p.trace_no, p.query_id, p.txn_time, a.from_status AS declined_from
         FROM payment p LEFT JOIN recon_action a ON a.payment_id = p.id AND a.action = 'decline' AND a.state = 'applied'
         WHERE p.method = 'card' AND p.id > ?
           AND ((p.settle_date IN (?, ?) AND p.txn_time >= ? AND p.txn_time < ?)
             OR ((p.settle_date IS NULL OR p.settle_date = '') AND p.txn_time >= ? AND p.txn_time < ?))
           AND (p.status IN ('approved', 'unknown', 'suspense') OR a.payment_id IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM recon_item i WHERE i.payment_id = p.id AND i.line_no IS NOT NULL AND COALESCE(i.txn_type, '') NOT IN ('04', '31')
                           AND i.run_id IN (${placeholders(runIds.length)}))
         ORDER BY p.id LIMIT 1000`,
          [after, mmdd(day), compact(day), near.from, near.to, range.from, range.to, ...runIds],
        ),
      );
      if (!page.length) return;
      after = page[page.length - 1].id;
      await this.insertItems(
        page.map((p) => {
          const status = p.declined_from ?? p.status;
          const live = LIVE.has(status);
          return {
            run_id: runId,
            settle_date: day,
            class: final ? 'ours_only' : 'pending_cutoff',
            item_key: `pay:${p.id}`,
            line_no: null,
            rf: p.rf,
            payment_id: p.id,
            our_status: status,
            our_amount_fen: num(p.amount_fen),
            acquirer_amount_fen: null,
            txn_type: null,
            query_id: p.query_id,
            orig_query_id: null,
            trace_no: p.trace_no,
            terminal_id: p.terminal_id,
            txn_time: p.txn_time ? p.txn_time.slice(4) : null,
            action: final && live ? 'decline' : null,
            action_state: final && live ? 'due' : null,
            note: !final
              ? "not in the file yet: looked for in the next two days' files (日切)"
              : live
                ? 'in none of the files to T+2: declined by the file'
                : 'we approved it and the acquirer did not settle it (短款)',
          } as NewItem;
        }),
      );
    }
  }

  /** An earlier day's pending items, now that this day's file is in: found later, or final after T+2. True when any changed. */
  private async carryPending(runId: string, x: string, day: string, window: Map<string, string>): Promise<boolean> {
    const pending = await this.db.read((m) =>
      rows<ItemRow>(m, "SELECT * FROM recon_item WHERE run_id = ? AND class = 'pending_cutoff' ORDER BY id", [runId]),
    );
    if (!pending.length) return false;
    const runIds = [...window.values()];
    const final = this.complete(x, window);
    let changed = false;
    for (let i = 0; i < pending.length; i += 500) {
      const chunk = pending.slice(i, i + 500);
      const ids = chunk.map((c) => c.payment_id!).filter(Boolean);
      const seen = ids.length
        ? await this.db.read((m) =>
            rows<{ payment_id: string; settle_date: string }>(
              m,
              `SELECT payment_id, settle_date FROM recon_item WHERE line_no IS NOT NULL AND COALESCE(txn_type, '') NOT IN ('04', '31') AND payment_id IN (${placeholders(ids.length)})
         AND run_id IN (${placeholders(runIds.length)})`,
              [...ids, ...runIds],
            ),
          )
        : [];
      await this.db.tx(async (m) => {
        for (const it of chunk) {
          const s = seen.find((r) => r.payment_id === it.payment_id);
          if (s) {
            await exec(m, "UPDATE recon_item SET class = 'matched', note = ? WHERE id = ?", [
              `found in the file of ${s.settle_date} (after the cut-off)`,
              it.id,
            ]);
            changed = true;
          } else if (final) {
            const live = LIVE.has(it.our_status ?? '');
            await exec(
              m,
              "UPDATE recon_item SET class = 'ours_only', action = ?, action_state = ?, note = ? WHERE id = ?",
              [
                live ? 'decline' : null,
                live ? 'due' : null,
                live
                  ? `in none of the files to ${day}: declined by the file`
                  : `we approved it and no file to ${day} settled it (短款)`,
                it.id,
              ],
            );
            changed = true;
          }
        }
      });
    }
    return changed;
  }

  private async recount(m: EntityManager, runId: string): Promise<void> {
    const c = await rows<{ class: ReconClass; n: unknown }>(
      m,
      'SELECT class, COUNT(*) AS n FROM recon_item WHERE run_id = ? GROUP BY class',
      [runId],
    );
    const n = (k: ReconClass) => num(c.find((r) => r.class === k)?.n ?? 0);
    await exec(
      m,
      'UPDATE recon_run SET n_matched = ?, n_amount_mismatch = ?, n_acquirer_only = ?, n_ours_only = ?, n_pending_cutoff = ? WHERE id = ?',
      [n('matched'), n('amount_mismatch'), n('acquirer_only'), n('ours_only'), n('pending_cutoff'), runId],
    );
  }

  // ---------------------------------------------------------------- automatic actions

  /** Applies the due actions of these runs, each at most once per payment ever (recon_action is the claim). */
  private async applyActions(runIds: string[]): Promise<number> {
    let applied = 0;
    for (;;) {
      const due = await this.db.read((m) =>
        rows<ItemRow>(
          m,
          `SELECT * FROM recon_item WHERE action_state = 'due' AND run_id IN (${placeholders(runIds.length)}) ORDER BY id LIMIT 200`,
          runIds,
        ),
      );
      if (!due.length) return applied;
      for (const it of due) if (await this.applyOne(it)) applied++;
    }
  }

  private async applyOne(it: ItemRow): Promise<boolean> {
    const action = it.action!;
    // The ledger's key: the payment, or for a refund leg the leg itself (a payment may have several).
    const pid = action === 'settle_refund' ? legIdOf(it) : it.payment_id!;
    const now = this.clock.now().getTime();
    const claim = await this.db.tx(async (m) => {
      const [led] = await rows<{ state: string }>(
        m,
        `SELECT state FROM recon_action WHERE payment_id = ? AND action = ?${this.db.forUpdate}`,
        [pid, action],
      );
      if (led && led.state !== 'claimed') {
        await exec(m, "UPDATE recon_item SET action_state = 'already' WHERE id = ?", [it.id]);
        return false;
      }
      if (!led) {
        await exec(
          m,
          "INSERT INTO recon_action (payment_id, action, from_status, run_id, item_id, state, at) VALUES (?, ?, ?, ?, ?, 'claimed', ?)",
          [pid, action, it.our_status ?? '', it.run_id, num(it.id), now],
        );
      }
      return true;
    });
    if (!claim) return false;
    let outcome: string;
    try {
      outcome = await this.act(action, it);
    } catch (err) {
      // The payment moved meanwhile (the sweeper or a person got there first): nothing left for the file to do.
      if (!(err instanceof DomainError)) throw err;
      outcome = `skipped: ${err.message}`;
    }
    const state = outcome.startsWith('skipped') ? 'skipped' : 'applied';
    await this.db.tx(async (m) => {
      await exec(m, 'UPDATE recon_action SET state = ?, outcome = ?, at = ? WHERE payment_id = ? AND action = ?', [
        state,
        outcome,
        this.clock.now().getTime(),
        pid,
        action,
      ]);
      await exec(m, 'UPDATE recon_item SET action_state = ? WHERE id = ?', [state, it.id]);
    });
    return state === 'applied';
  }

  private async act(action: AutoAction, it: ItemRow): Promise<string> {
    if (action === 'settle_refund') return this.settleRefundLeg(it);
    const p = await this.db.read((m) =>
      rows<{ status: string }>(m, 'SELECT status FROM payment WHERE id = ?', [it.payment_id]),
    );
    const status = p[0]?.status;
    if (action === 'approve') {
      if (!LIVE.has(status)) return `skipped: the payment is ${status}`;
      await this.payments.settleApproved(
        it.payment_id!,
        { queryId: it.query_id, traceNo: it.trace_no, settleDate: mmdd(it.settle_date) },
        RECON_ACTOR,
      );
      return 'approved';
    }
    if (action === 'decline') {
      if (!LIVE.has(status)) return `skipped: the payment is ${status}`;
      await this.payments.settleFailed(
        it.payment_id!,
        'declined',
        {
          reason: `absent from the acquirer's settlement files from ${it.settle_date} to ${addDays(it.settle_date, 2)}`,
        },
        RECON_ACTOR,
      );
      return 'declined';
    }
    const evidence = {
      source: 'recon' as const,
      detail: {
        runId: it.run_id,
        settleDate: it.settle_date,
        queryId: it.query_id,
        amountFen: num(it.acquirer_amount_fen),
        lineNo: num(it.line_no),
      },
    };
    // The faults issue's dispute: the payment becomes `disputed` with the money owed recorded; a person decides.
    return `dispute: ${await this.payments.dispute(it.payment_id!, evidence, RECON_ACTOR)}`;
  }

  /** An unknown refund leg the file shows settled: approved, as the sweep would have had it from an answer. */
  private async settleRefundLeg(it: ItemRow): Promise<string> {
    const legId = legIdOf(it);
    return this.db.tx(async (m) => {
      const [leg] = await rows<{ status: string; rf: string | null }>(
        m,
        `SELECT status, rf FROM refund_leg WHERE id = ?${this.db.forUpdate}`,
        [legId],
      );
      if (leg?.status !== 'unknown') return `skipped: the refund leg is ${leg?.status ?? 'gone'}`;
      const now = this.clock.now().getTime();
      await moveLeg(m, legId, 'unknown', 'approved', now, {
        finished_at: now,
        claim_until: null,
        next_check_at: null,
        reason: `settled by the acquirer's file of ${it.settle_date} (对账)`,
      });
      await audit(m, {
        actor: RECON_ACTOR,
        entity: 'refund_leg',
        entityId: legId,
        action: 'settle',
        before: { status: 'unknown' },
        after: { status: 'approved', rf: leg.rf, runId: it.run_id, settleDate: it.settle_date },
        at: now,
      });
      return 'refund approved';
    });
  }

  // ---------------------------------------------------------------- people

  async resolve(itemId: number, action: ResolveAction, note: string, actor: string): Promise<ItemView> {
    await this.db.tx(async (m) => {
      const [it] = await rows<ItemRow>(m, `SELECT * FROM recon_item WHERE id = ?${this.db.forUpdate}`, [itemId]);
      if (!it) throw notFound('reconciliation_item', String(itemId));
      if (it.class === 'matched')
        throw conflict('nothing_to_resolve', 'a matched item needs no resolution', { itemId });
      const [prev] = await rows<{ action: ResolveAction; resolved_by: string }>(
        m,
        `SELECT action, resolved_by FROM recon_resolution WHERE item_key = ?${this.db.forUpdate}`,
        [it.item_key],
      );
      if (prev && prev.action !== 'chase')
        throw conflict('already_resolved', `this difference was resolved (${prev.action}) by ${prev.resolved_by}`, {
          itemId,
          action: prev.action,
        });
      const now = this.clock.now().getTime();
      if (prev)
        await exec(
          m,
          'UPDATE recon_resolution SET action = ?, note = ?, item_id = ?, resolved_by = ?, resolved_at = ? WHERE item_key = ?',
          [action, note, itemId, actor, now, it.item_key],
        );
      else
        await exec(
          m,
          'INSERT INTO recon_resolution (item_key, action, note, item_id, resolved_by, resolved_at) VALUES (?, ?, ?, ?, ?, ?)',
          [it.item_key, action, note, itemId, actor, now],
        );
      await audit(m, {
        actor,
        entity: 'reconciliation_item',
        entityId: String(itemId),
        action: 'resolve',
        before: prev ? { action: prev.action } : { class: it.class },
        after: { action, note, class: it.class, paymentId: it.payment_id, rf: it.rf },
        at: now,
      });
    });
    return this.item(itemId);
  }

  // ---------------------------------------------------------------- reading

  private async runRow(id: string): Promise<RunRow> {
    const [r] = await this.db.read((m) => rows<RunRow>(m, 'SELECT * FROM recon_run WHERE id = ?', [id]));
    if (!r) throw notFound('reconciliation', id);
    return r;
  }

  async run(id: string): Promise<RunView> {
    return this.toRunView(await this.runRow(id));
  }

  async list(settleDate?: string, limit = 100): Promise<RunView[]> {
    const found = await this.db.read((m) =>
      settleDate
        ? rows<RunRow>(m, 'SELECT * FROM recon_run WHERE settle_date = ? ORDER BY created_at DESC, id LIMIT ?', [
            settleDate,
            limit,
          ])
        : rows<RunRow>(m, 'SELECT * FROM recon_run ORDER BY settle_date DESC, created_at DESC, id LIMIT ?', [limit]),
    );
    return found.map((r) => this.toRunView(r));
  }

  async items(
    runId: string,
    q: { class?: ReconClass; after?: number; limit: number },
  ): Promise<{ items: ItemView[]; next: number | null }> {
    await this.runRow(runId);
    const found = await this.db.read((m) =>
      rows<ItemRow>(
        m,
        `SELECT i.*, r.action AS r_action, r.note AS r_note, r.resolved_by AS r_by, r.resolved_at AS r_at
       FROM recon_item i LEFT JOIN recon_resolution r ON r.item_key = i.item_key
       WHERE i.run_id = ? AND i.id > ?${q.class ? ' AND i.class = ?' : ''} ORDER BY i.id LIMIT ?`,
        [runId, q.after ?? 0, ...(q.class ? [q.class] : []), q.limit + 1],
      ),
    );
    const more = found.length > q.limit;
    const page = found.slice(0, q.limit).map((r) => this.toItemView(r));
    return { items: page, next: more ? page[page.length - 1].id : null };
  }

  async item(id: number): Promise<ItemView> {
    const [r] = await this.db.read((m) =>
      rows<ItemRow>(
        m,
        `SELECT i.*, r.action AS r_action, r.note AS r_note, r.resolved_by AS r_by, r.resolved_at AS r_at
       FROM recon_item i LEFT JOIN recon_resolution r ON r.item_key = i.item_key WHERE i.id = ?`,
        [id],
      ),
    );
    if (!r) throw notFound('reconciliation_item', String(id));
    return this.toItemView(r);
  }

  private toRunView(r: RunRow): RunView {
    return {
      id: r.id,
      settleDate: r.settle_date,
      merId: r.mer_id,
      status: r.status,
      source: r.source,
      latest: num(r.latest) === 1,
      file: { name: r.file_name, sha256: r.file_sha256, lines: numOrNull(r.file_lines) },
      totals:
        r.total_count == null
          ? null
          : {
              count: num(r.total_count),
              amountFen: num(r.total_amount_fen),
              feeFen: num(r.total_fee_fen),
              netFen: num(r.total_net_fen),
            },
      counts: {
        matched: num(r.n_matched),
        amountMismatch: num(r.n_amount_mismatch),
        acquirerOnly: num(r.n_acquirer_only),
        oursOnly: num(r.n_ours_only),
        pendingCutoff: num(r.n_pending_cutoff),
      },
      problem: r.problem ? JSON.parse(r.problem) : null,
      attempts: num(r.attempts),
      nextTryAt: r.status === 'waiting' ? iso(r.next_try_at) : null,
      createdBy: r.created_by,
      createdAt: iso(r.created_at)!,
      finishedAt: iso(r.finished_at),
    };
  }

  private toItemView(r: ItemRow): ItemView {
    return {
      id: num(r.id),
      runId: r.run_id,
      class: r.class,
      rf: r.rf,
      paymentId: r.payment_id,
      ourStatus: r.our_status,
      ourAmountFen: numOrNull(r.our_amount_fen),
      acquirerAmountFen: numOrNull(r.acquirer_amount_fen),
      txnType: r.txn_type,
      queryId: r.query_id,
      origQueryId: r.orig_query_id,
      traceNo: r.trace_no,
      terminalId: r.terminal_id,
      txnTime: r.txn_time,
      settleDate: r.settle_date,
      lineNo: numOrNull(r.line_no),
      note: r.note,
      action: r.action ? { kind: r.action, state: r.action_state ?? '' } : null,
      resolution: r.r_action ? { action: r.r_action, note: r.r_note ?? null, by: r.r_by!, at: iso(r.r_at)! } : null,
    };
  }
}
