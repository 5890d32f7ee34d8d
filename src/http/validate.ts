import { z } from 'zod';
import { DomainError } from '../shared/errors';

/** Parses input with one schema; a failure is a 400 naming each bad field. Nothing has been touched yet. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  const first = issues[0];
  throw new DomainError(400, 'invalid_request', first ? `${first.path || 'body'}: ${first.message}` : 'invalid request', { issues });
}

export const MAX_QTY = 1_000_000;
export const MAX_FEN = 1_000_000_000_000; // ¥10 000 000 000, far below 2^53

export const skuCode = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$/, 'a SKU is 1–64 letters, digits, . _ : -');
export const laneName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$/, 'a lane is 1–64 letters, digits, _ -');
export const qty = z.number().int('must be a whole number').positive('must be positive').max(MAX_QTY, `must be at most ${MAX_QTY}`);
export const fen = z.number().int('must be whole fen').min(0).max(MAX_FEN, `must be at most ${MAX_FEN}`);
export const positiveFen = fen.refine((v) => v > 0, 'must be positive');
export const lines = z.array(z.object({ sku: skuCode, qty })).min(1, 'at least one line').max(500, 'at most 500 lines');
