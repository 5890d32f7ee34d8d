import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Db, exec } from '../db/db';
import { IdempotencyRecord } from '../idempotency/idempotency.entity';
import { DomainError } from '../shared/errors';

function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; driverError?: { code?: string; errno?: number } };
  const code = e.code ?? e.driverError?.code ?? '';
  const errno = e.errno ?? e.driverError?.errno;
  return errno === 1062 || code.startsWith('SQLITE_CONSTRAINT');
}

/**
 * Idempotency-Key on creating POSTs: the same key and body replays the first answer; the same key
 * with another body is 422. A key is claimed before the work runs, so two racing retries cannot
 * both create; a 5xx frees the key for another try.
 */
export function idempotency(db: Db): RequestHandler {
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || key === undefined) return next();
    if (!/^[\x21-\x7e]{1,128}$/.test(key)) throw new DomainError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1–128 visible ASCII characters');
    const principal = req.principal!.id;
    const requestHash = createHash('sha256').update(`${req.method} ${req.originalUrl}\n${JSON.stringify(req.body ?? null)}`).digest('hex');
    try {
      await db.tx((m) => m.insert(IdempotencyRecord, { principal, key, requestHash, statusCode: 0, responseJson: null, createdAt: Date.now() }));
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const first = await db.read((m) => m.findOne(IdempotencyRecord, { where: { principal, key } }));
      if (!first) throw new DomainError(409, 'idempotency_key_in_progress', 'a request with this Idempotency-Key is being handled; retry shortly');
      if (first.requestHash !== requestHash) throw new DomainError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request');
      if (first.statusCode === 0) throw new DomainError(409, 'idempotency_key_in_progress', 'a request with this Idempotency-Key is being handled; retry shortly');
      res.status(first.statusCode).set('Idempotent-Replay', 'true').type('application/json').send(first.responseJson ?? '');
      return;
    }
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      const status = res.statusCode;
      const text = JSON.stringify(body);
      const settle = status >= 500
        ? db.tx((m) => exec(m, 'DELETE FROM idempotency_key WHERE principal = ? AND idem_key = ?', [principal, key]))
        : db.tx((m) => exec(m, 'UPDATE idempotency_key SET status_code = ?, response_json = ? WHERE principal = ? AND idem_key = ?', [status, text, principal, key]));
      // The answer waits for the record, so a retry after this answer always finds it.
      settle.then(() => json(body), (err) => { res.status(500); json({ error: { code: 'internal_error', message: String(err) } }); });
      return res;
    };
    next();
  };
}
