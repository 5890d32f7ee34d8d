import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { EntityManager } from 'typeorm';
import { Db, Stmt, exec, runAll } from '../db/db';
import { Batcher, multiRowInsert } from '../db/batch';
import { isDuplicateKey } from '../db/errors';
import { IdempotencyRecord } from '../idempotency/idempotency.entity';
import type { BatchObserver, BatchSettings } from '../orders/order-batcher';
import { DomainError } from '../shared/errors';
import { internalErrorBody } from './errors';

/**
 * How long a claimed key belongs to the request that claimed it without a word from it. A request that
 * runs longer (a return whose card legs wait at the terminal) renews its claim every third of this.
 */
export const IDEMPOTENCY_LEASE_MS = 30_000;

/** A request renews its claim for at most this long: past it a retry takes the key over (never in progress forever). */
export const IDEMPOTENCY_RENEW_FOR_MS = 15 * 60_000;

/**
 * The claim a keyed request holds, and where its answer goes when the route lets the work's own
 * transaction write it (answerSlot): the order and its stored answer then commit together or not at
 * all, so a request that dies after its commit leaves an answer to replay, never work to redo.
 */
export interface AnswerSlot {
  principal: string;
  key: string;
  /** `created_at` of this request's lease: the answer is written only while the request still holds it. */
  claimedAt: number;
  /** The status the route answers with when the work succeeds. */
  status: number;
  /** The answer written by the last transaction that tried (it may have rolled back). */
  staged: string | null;
  /** The answer committed with the work: sent as is, and what a retry replays. */
  stored: string | null;
}

declare module 'express-serve-static-core' {
  interface Request {
    idempotency?: AnswerSlot;
  }
}

/**
 * The request's answer slot when it carries an Idempotency-Key (else undefined): a service that gets
 * one writes the answer with storeAnswers inside the transaction that does the work, and calls
 * answerCommitted once that transaction has committed.
 */
export function answerSlot(req: Request, status: number): AnswerSlot | undefined {
  if (!req.idempotency) return undefined;
  req.idempotency.status = status;
  return req.idempotency;
}

/** After the transaction that ran storeAnswers for `slot` committed: the route's answer is the stored one. */
export function answerCommitted(slot: AnswerSlot | undefined): void {
  if (slot && slot.staged !== null) slot.stored = slot.staged;
}

/**
 * After more work on an answer that committed with its transaction (a return's legs driven at the terminal):
 * the stored answer becomes `body`, so the request and any retry say the same. While the request still holds
 * its key; if this write fails, the answer committed with the work stands (true, if less recent).
 */
export async function refreshAnswer(db: Db, slot: AnswerSlot | undefined, body: unknown): Promise<void> {
  if (!slot || slot.stored === null) return;
  const text = JSON.stringify(body);
  const n = await db
    .tx((m) =>
      exec(
        m,
        'UPDATE idempotency_key SET response_json = ? WHERE principal = ? AND idem_key = ? AND created_at = ? AND status_code = ?',
        [text, slot.principal, slot.key, slot.claimedAt, slot.status],
      ),
    )
    .catch(() => 0);
  if (n === 1) slot.stored = text;
}

/**
 * Writes the answers (status and body) of keyed requests inside the caller's transaction, in one
 * statement per 200 keys. Each key must still be this request's lease; if one was taken over (the
 * request outlived IDEMPOTENCY_LEASE_MS and a retry runs it now) this throws 409 in progress and the
 * transaction, with the work, rolls back. A batch that throws is retried one request at a time
 * (db/batch.ts), so only the request that lost its key is refused.
 */
export async function storeAnswers(m: EntityManager, answers: { slot: AnswerSlot; body: unknown }[]): Promise<void> {
  await runAll(m, answerStatements(answers));
}

/** storeAnswers' statements, for a caller that sends them with the rest of its work (db.runAll). */
export function answerStatements(answers: { slot: AnswerSlot; body: unknown }[]): Stmt[] {
  const out: Stmt[] = [];
  for (let i = 0; i < answers.length; i += 200) {
    const chunk = answers.slice(i, i + 200);
    for (const a of chunk) a.slot.staged = JSON.stringify(a.body);
    const when = chunk.map(() => 'WHEN principal = ? AND idem_key = ? THEN ?').join(' ');
    out.push({
      sql: `UPDATE idempotency_key SET status_code = CASE ${when} END, response_json = CASE ${when} END
        WHERE status_code = 0 AND (${chunk.map(() => '(principal = ? AND idem_key = ? AND created_at = ?)').join(' OR ')})`,
      params: [
        ...chunk.flatMap((a) => [a.slot.principal, a.slot.key, a.slot.status]),
        ...chunk.flatMap((a) => [a.slot.principal, a.slot.key, a.slot.staged]),
        ...chunk.flatMap((a) => [a.slot.principal, a.slot.key, a.slot.claimedAt]),
      ],
      guard: { rows: chunk.length, error: inProgress },
    });
  }
  return out;
}

const inProgress = () =>
  new DomainError(
    409,
    'idempotency_key_in_progress',
    'a request with this Idempotency-Key is being handled; retry shortly',
  );

/**
 * Idempotency-Key on creating POSTs: the same key and body replays the first answer; the same key
 * with another body is 422. A key is claimed before the work runs, so two racing retries cannot
 * both create; a 5xx frees the key for another try. A claim is a lease (`created_at` is when it was
 * taken, renewed while the request works): a request that died without answering (a crash, a kill -9) leaves its key in progress, and a
 * retry after the lease takes the key over and runs the request again — the work it did not commit is
 * gone with it, so running again is what the client asked for. A key is never "in progress" forever.
 *
 * Order creation, tenders (cash and card), returns and stock receipts write their answer in the transaction of the work (answerSlot,
 * storeAnswers): a request that died after that commit is replayed, not re-run. Other routes record
 * their answer just after the work, as before. Every write here is conditional on the request still
 * holding its lease, so a request that lost its key to a retry never overwrites the retry's claim.
 */
export function idempotency(
  db: Db,
  opts: { leaseMs?: number; now?: () => number; batch?: BatchSettings; observe?: BatchObserver } = {},
): RequestHandler & { idle(): Promise<void> } {
  const leaseMs = opts.leaseMs ?? IDEMPOTENCY_LEASE_MS;
  const now = opts.now ?? Date.now;
  const claim = claimer(db, opts.batch, opts.observe);
  const renewals = renewer(db, leaseMs, now);
  const handler: RequestHandler = async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || key === undefined) return next();
    if (!/^[\x21-\x7e]{1,128}$/.test(key))
      throw new DomainError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1–128 visible ASCII characters');
    const principal = req.principal!.id;
    const requestHash = createHash('sha256')
      .update(`${req.method} ${req.originalUrl}\n${JSON.stringify(req.body ?? null)}`)
      .digest('hex');
    let claimedAt = now();
    try {
      await claim.submit({ principal, key, requestHash, createdAt: claimedAt });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const first = await db.read((m) => m.findOne(IdempotencyRecord, { where: { principal, key } }));
      if (!first) throw inProgress();
      if (first.requestHash !== requestHash)
        throw new DomainError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request');
      if (first.statusCode !== 0) {
        res
          .status(first.statusCode)
          .set('Idempotent-Replay', 'true')
          .type('application/json')
          .send(first.responseJson ?? '');
        return;
      }
      if (now() - Math.max(first.createdAt, first.renewedAt ?? 0) < leaseMs) throw inProgress();
      // The request that held the key died (it neither answered nor renewed its claim): take the lease over
      // (one retry wins the conditional UPDATE; a renewal that came meanwhile keeps the key with its request).
      const t = now();
      const taken = await db.tx((m) =>
        exec(
          m,
          `UPDATE idempotency_key SET created_at = ?, renewed_at = NULL
            WHERE principal = ? AND idem_key = ? AND status_code = 0 AND created_at = ? AND (renewed_at IS NULL OR renewed_at <= ?)`,
          [t, principal, key, first.createdAt, t - leaseMs],
        ),
      );
      if (taken !== 1) throw inProgress();
      claimedAt = t;
    }
    const slot: AnswerSlot = { principal, key, claimedAt, status: 0, staged: null, stored: null };
    req.idempotency = slot;
    // Renewed until the request answers — also after its client went away: the work goes on, and the
    // client's retry must wait for its answer rather than run it a second time.
    renewals.add(slot);
    res.once('finish', () => renewals.remove(slot));
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      renewals.remove(slot);
      // Committed with the work: the answer is already the record, byte for byte.
      if (slot.stored !== null) return res.status(slot.status).type('application/json').send(slot.stored);
      const status = res.statusCode;
      const text = JSON.stringify(body);
      const mine = 'principal = ? AND idem_key = ? AND status_code = 0 AND created_at = ?';
      const settle =
        status >= 500
          ? db.tx((m) => exec(m, `DELETE FROM idempotency_key WHERE ${mine}`, [principal, key, claimedAt]))
          : db.tx((m) =>
              exec(m, `UPDATE idempotency_key SET status_code = ?, response_json = ? WHERE ${mine}`, [
                status,
                text,
                principal,
                key,
                claimedAt,
              ]),
            );
      // The answer waits for the record, so a retry after this answer always finds it.
      settle.then(
        () => json(body),
        () => {
          // The work is committed but its answer is not recorded; the lease lets a retry run again.
          res.status(500);
          json(internalErrorBody(req));
        },
      );
      return res;
    };
    next();
  };
  return Object.assign(handler, {
    idle: async () => {
      await claim.idle();
      await renewals.stop();
    },
  });
}

/**
 * Keeps the claims of requests still working renewed (`renewed_at`), one timer for all of them, running
 * only while there are some. A claim is renewed once it is a third of the lease old, then every third
 * of the lease, so a retry never finds a live request's claim lapsed; never past IDEMPOTENCY_RENEW_FOR_MS.
 * A renewal that finds the claim answered or taken over stops renewing it; one that fails is tried again.
 */
function renewer(db: Db, leaseMs: number, now: () => number) {
  const live = new Set<AnswerSlot>();
  const every = Math.max(Math.floor(leaseMs / 3), 1);
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  const tick = async () => {
    const t = now();
    for (const slot of [...live]) {
      if (t - slot.claimedAt < every) continue;
      if (t - slot.claimedAt > IDEMPOTENCY_RENEW_FOR_MS) {
        live.delete(slot);
        continue;
      }
      const renewed = await db
        .tx((m) =>
          exec(
            m,
            'UPDATE idempotency_key SET renewed_at = ? WHERE principal = ? AND idem_key = ? AND status_code = 0 AND created_at = ?',
            [t, slot.principal, slot.key, slot.claimedAt],
          ),
        )
        .catch(() => 1);
      if (renewed === 0) live.delete(slot);
    }
  };
  const stopTimer = () => {
    if (timer) clearInterval(timer);
    timer = null;
  };
  return {
    add(slot: AnswerSlot): void {
      live.add(slot);
      if (timer) return;
      timer = setInterval(() => {
        running ??= tick().finally(() => (running = null));
      }, every);
      timer.unref();
    },
    remove(slot: AnswerSlot): void {
      live.delete(slot);
      if (live.size === 0) stopTimer();
    },
    async stop(): Promise<void> {
      stopTimer();
      live.clear();
      await running;
    },
  };
}

interface Claim {
  principal: string;
  key: string;
  requestHash: string;
  createdAt: number;
}

const CLAIM_COLUMNS = ['principal', 'idem_key', 'request_hash', 'status_code', 'response_json', 'created_at'];
const claimRow = (c: Claim) => [c.principal, c.key, c.requestHash, 0, null, c.createdAt];

/**
 * Claims (the in-progress row a keyed request inserts before its work) of concurrent requests commit
 * together: one multi-row INSERT per batch instead of a transaction per request, which made a keyed
 * order cost 2.4–2.6 times a key-less one (bench:reserve). Each claim still commits before its request's work starts. A key
 * that is taken already (a retry, two racing requests, the same key twice in one batch) fails the
 * batch's INSERT, and the batch goes again one claim at a time: only that request sees the duplicate,
 * which the middleware turns into a replay, a 422 or 409 in progress as before.
 */
function claimer(
  db: Db,
  settings: BatchSettings | undefined,
  observe: BatchObserver | undefined,
): Pick<Batcher<Claim, void>, 'submit' | 'idle'> {
  const insert = (claims: Claim[]) =>
    db.tx(async (m) => {
      await runAll(m, multiRowInsert('idempotency_key', CLAIM_COLUMNS, claims.map(claimRow)));
    });
  const one = (c: Claim) => insert([c]);
  if (!settings?.enabled) return { submit: one, idle: () => Promise.resolve() };
  return new Batcher<Claim, void>({
    name: 'idempotency_claims',
    maxSize: settings.maxSize,
    maxWaitMs: settings.maxWaitMs,
    maxInFlight: settings.maxInFlight,
    applyOne: one,
    onBatch: (info) => observe?.(info),
    applyBatch: async (claims) => {
      await insert(claims);
      return claims.map(() => ({ ok: true as const, value: undefined }));
    },
  });
}
