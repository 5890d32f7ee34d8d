import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { couponCode, fen, noQuery, parse, pathParam, positiveFen, skuCode } from '../http/validate';
import { CouponsService } from './coupons.service';

const couponBody = z
  .object({
    kind: z.enum(['amount_off', 'percent_off']),
    amountFen: positiveFen.optional(),
    percent: z
      .number()
      .gt(0, 'must be above 0')
      .max(100, 'must be at most 100')
      .refine(
        (p) => Number.isInteger(Math.round(p * 100)) && Math.abs(p * 100 - Math.round(p * 100)) < 1e-9,
        'at most two decimals',
      )
      .optional(),
    minSubtotalFen: fen.optional(),
    skus: z.array(skuCode).max(500).optional(),
    validFrom: z.string().datetime({ offset: true }).optional(),
    validTo: z.string().datetime({ offset: true }).optional(),
    maxUses: z.number().int().min(0).max(1_000_000_000).optional(),
  })
  .strict();
/** A coupon page: the cursor is the last code of the page before (codes are unique and ordered). */
export const couponsQuery = z
  .object({
    cursor: couponCode.optional(),
    limit: z.coerce.number().int('a whole number').min(1).max(200).optional(),
  })
  .strict();
export type CouponRequest = z.input<typeof couponBody>;

export function couponsRoutes(coupons: CouponsService): Router {
  const r = Router();

  r.put('/coupons/:code', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const code = pathParam('code', couponCode, req.params.code);
    res.json(await coupons.upsert(code, parse(couponBody, req.body), actorOf(req)));
  });

  r.get('/coupons', allow('backoffice'), async (req, res) => {
    const q = parse(couponsQuery, req.query, 'query');
    res.json(await coupons.list(q.cursor, q.limit ?? 50));
  });

  r.get('/coupons/:code', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await coupons.get(pathParam('code', couponCode, req.params.code)));
  });

  return r;
}
