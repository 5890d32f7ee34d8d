import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Db, exec } from '../db/db';
import { isDuplicateKey } from '../db/errors';
import { IdempotencyRecord } from '../idempotency/idempotency.entity';
import { DomainError } from '../shared/errors';

/** How long a claimed key belongs to the request that claimed it. Longer than any request runs (card tenders answer 202 at once). */
export const IDEMPOTENCY_LEASE_MS = 30_000;

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
 * taken): a request that died without answering (a crash, a kill -9) leaves its key in progress, and a
 * retry after the lease takes the key over and runs the request again — the work it did not commit is
 * gone with it, so running again is what the client asked for. A key is never "in progress" forever.
 */
export function idempotency(db: Db, opts: { leaseMs?: number; now?: () => number } = {}): RequestHandler {
  const leaseMs = opts.leaseMs ?? IDEMPOTENCY_LEASE_MS;
  const now = opts.now ?? Date.now;
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || key === undefined) return next();
    if (!/^[\x21-\x7e]{1,128}$/.test(key))
      throw new DomainError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1–128 visible ASCII characters');
    const principal = req.principal!.id;
    const requestHash = createHash('sha256')
      .update(`${req.method} ${req.originalUrl}\n${JSON.stringify(req.body ?? null)}`)
      .digest('hex');
    try {
      await db.tx((m) =>
        m.insert(IdempotencyRecord, {
          principal,
          key,
          requestHash,
          statusCode: 0,
          responseJson: null,
          createdAt: now(),
        }),
      );
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
      if (now() - first.createdAt < leaseMs) throw inProgress();
      // The request that held the key died: take the lease over (one retry wins the conditional UPDATE).
      const t = now();
      const taken = await db.tx((m) =>
        exec(
          m,
          'UPDATE idempotency_key SET created_at = ? WHERE principal = ? AND idem_key = ? AND status_code = 0 AND created_at = ?',
          [t, principal, key, first.createdAt],
        ),
      );
      if (taken !== 1) throw inProgress();
    }
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      const status = res.statusCode;
      const text = JSON.stringify(body);
      const settle =
        status >= 500
          ? db.tx((m) => exec(m, 'DELETE FROM idempotency_key WHERE principal = ? AND idem_key = ?', [principal, key]))
          : db.tx((m) =>
              exec(
                m,
                'UPDATE idempotency_key SET status_code = ?, response_json = ? WHERE principal = ? AND idem_key = ?',
                [status, text, principal, key],
              ),
            );
      // The answer waits for the record, so a retry after this answer always finds it.
      settle.then(
        () => json(body),
        () => {
          // The work is committed but its answer is not recorded; the lease lets a retry run again.
          res.status(500);
          json({
            error: {
              code: 'internal_error',
              message: `internal error (request ${req.id ?? 'unknown'})`,
              details: { requestId: req.id },
            },
          });
        },
      );
      return res;
    };
    next();
  };
}
