import type { Request } from 'express';
import { z } from 'zod';
import { DomainError } from '../shared/errors';

type Where = 'body' | 'query';

/**
 * Parses input with one schema; a failure is a 400 naming each bad field. Nothing has been touched yet.
 * A missing body is its own answer: it is almost always a forgotten `Content-Type: application/json`.
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: Where = 'body'): z.infer<S> {
  if (value === undefined && where === 'body') {
    throw new DomainError(
      400,
      'expected_json',
      'this route takes a JSON body: send one with Content-Type: application/json',
    );
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => {
    const at = [where, ...i.path.map(String)].join('.');
    // Name the field we do not know rather than zod's generic wording.
    if (i.code === 'unrecognized_keys')
      return {
        path: at,
        message: `unknown ${where === 'query' ? 'parameter' : 'field'} ${i.keys.map((k) => `"${k}"`).join(', ')}`,
      };
    return { path: at, message: i.message };
  });
  const first = issues[0];
  throw new DomainError(400, 'invalid_request', first ? `${first.path}: ${first.message}` : 'invalid request', {
    issues,
  });
}

/** A path parameter: `path: orderId is not an id`, not a complaint about the body. */
export function pathParam<S extends z.ZodType>(name: string, schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const message = r.error.issues[0]?.message ?? 'is not valid';
  throw new DomainError(400, 'invalid_path_param', `path: ${name} ${message.replace(/^not /, 'is not ')}`, {
    param: name,
    value: String(value).slice(0, 100),
  });
}

const NO_QUERY = z.object({}).strict();
/** For routes that take no query parameters: any is an unknown one (one schema, built once: zod compiles each it is given). */
export function noQuery(req: Request): void {
  parse(NO_QUERY, req.query, 'query');
}

export const MAX_QTY = 1_000_000;
/** The terminal's AM field carries 12 digits: more than that cannot be charged, so it is refused before anything is stored. */
export const MAX_FEN = 999_999_999_999;

/** A SKU code (also what a scanner may type for one); one pattern for every route, the CSV reader and the scan. */
export const SKU_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
export const skuCode = z.string().regex(SKU_PATTERN, 'a SKU is 1–64 letters, digits, . _ : -');
export const couponCode = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'a coupon code is 1–64 letters, digits, _ -');
export const laneName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'a lane is 1–64 letters, digits, _ -');
export const qty = z
  .number()
  .int('must be a whole number')
  .positive('must be positive')
  .max(MAX_QTY, `must be at most ${MAX_QTY}`);
export const fen = z
  .number()
  .int('must be whole fen')
  .min(0)
  .max(MAX_FEN, `must be at most ${MAX_FEN} fen (12 digits, what a terminal can carry)`);
export const positiveFen = fen.refine((v) => v > 0, 'must be positive');
/** One order or receipt line; strict, and an object so a capability can `.extend()` it (e.g. a price override). */
export const lineSchema = z.object({ sku: skuCode, qty }).strict();
export const lines = z.array(lineSchema).min(1, 'at least one line').max(500, 'at most 500 lines');
export const uuidParam = z.string().uuid('not an id');
/** `from`/`to` in a query: an ISO time or epoch milliseconds. */
export const instant = z
  .string()
  .max(40)
  .transform((s, ctx) => {
    const ms = /^\d{1,15}$/.test(s) ? Number(s) : Date.parse(s);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'not a time (ISO 8601 or epoch ms)' });
      return z.NEVER;
    }
    return ms;
  });
export const pageLimit = z.coerce.number().int('a whole number').min(1).max(500);
