import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { answerSlot } from '../http/idempotency';
import { laneName, parse, positiveFen } from '../http/validate';
import { PaymentsService } from './payments.service';
import { PAYMENT_STATUSES, PaymentStatus, REFUND_STATES, RefundState } from './payment.entity';
import { DomainError } from '../shared/errors';

const uuid = z.string().uuid('not an id');
const tenderBody = z
  .object({
    method: z.enum(['card', 'cash']),
    amountFen: positiveFen,
    lane: laneName,
    acceptUnknownCard: z.boolean().optional(),
  })
  .strict();
const resolveBody = z
  .object({ outcome: z.enum(['approved', 'declined', 'refund']), note: z.string().trim().min(1, 'say why').max(2000) })
  .strict();
const refundResolveBody = z
  .object({ outcome: z.literal('done'), note: z.string().trim().min(1, 'say how the money went back').max(2000) })
  .strict();
const isoTime = z.iso
  .datetime({ offset: true, message: 'an ISO 8601 time, e.g. 2026-11-25T10:00:00+08:00' })
  .transform((v) => Date.parse(v));
const listQuery = z.object({
  status: z.enum(PAYMENT_STATUSES as [PaymentStatus, ...PaymentStatus[]]).optional(),
  refund: z.enum(REFUND_STATES as [RefundState, ...RefundState[]]).optional(),
  rf: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'an RF is 1–32 letters, digits, _ -')
    .optional(),
  lane: laneName.optional(),
  from: isoTime.optional(),
  to: isoTime.optional(),
  limit: z.coerce.number().int('must be a whole number').min(1).max(500).optional(),
  cursor: z.string().max(200).optional(),
});
const waitQuery = z.object({ wait: z.coerce.number().min(0).max(60).optional() });

/** Unknown or repeated query parameters are a 400 naming the parameter, never silently ignored. */
function strictQuery(query: unknown, schema: z.ZodObject): Record<string, unknown> {
  const q = (query ?? {}) as Record<string, unknown>;
  const known = Object.keys(schema.shape);
  for (const [k, v] of Object.entries(q)) {
    if (!known.includes(k))
      throw new DomainError(400, 'invalid_request', `${k}: unknown query parameter (known: ${known.join(', ')})`, {
        issues: [{ path: k, message: 'unknown query parameter' }],
      });
    if (typeof v !== 'string')
      throw new DomainError(400, 'invalid_request', `${k}: give it once, as a plain value`, {
        issues: [{ path: k, message: 'give it once' }],
      });
  }
  return q;
}

export function paymentsRoutes(payments: PaymentsService): Router {
  const r = Router();

  r.post('/orders/:id/payments', allow('cashier'), async (req, res) => {
    const id = parse(uuid, req.params.id);
    const body = parse(tenderBody, req.body);
    checkLane(req, body.lane);
    // The tender's answer is stored with the payment (a retry after a crash replays it, card or cash); a cash
    // tender's order lane is checked under the order's lock.
    const card = body.method === 'card';
    const p = await payments.tender(id, body, actorOf(req), {
      answer: answerSlot(req, card ? 202 : 201),
      boundLane: card ? undefined : (req.principal?.lane ?? undefined),
    });
    res.status(card ? 202 : 201).json(p);
  });

  r.get('/payments/:id', allow('cashier', 'backoffice'), async (req, res) => {
    const { wait } = parse(waitQuery, strictQuery(req.query, waitQuery));
    res.json(await payments.get(parse(uuid, req.params.id), wait ?? 0));
  });

  r.get('/payments', allow('backoffice'), async (req, res) => {
    const q = parse(listQuery, strictQuery(req.query, listQuery));
    // With `limit` or `cursor`: a page, {items, nextCursor}. Without either: the contract's original plain list
    // (first 500), kept for callers written against it; X-Next-Cursor says when there is more.
    const paged = q.limit !== undefined || q.cursor !== undefined;
    const page = await payments.page(paged ? q : { ...q, limit: 500 });
    if (paged) return void res.json(page);
    if (page.nextCursor) res.setHeader('X-Next-Cursor', page.nextCursor);
    res.json(page.items);
  });

  r.post('/payments/:id/resolve', allow('backoffice'), async (req, res) => {
    const body = parse(resolveBody, req.body);
    res.json(await payments.resolve(parse(uuid, req.params.id), body.outcome, body.note, actorOf(req)));
  });

  r.post('/payments/:id/refund/resolve', allow('backoffice'), async (req, res) => {
    const body = parse(refundResolveBody, req.body);
    res.json(await payments.resolveRefund(parse(uuid, req.params.id), body.note, actorOf(req)));
  });

  return r;
}
