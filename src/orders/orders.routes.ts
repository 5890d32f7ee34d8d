import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane, checkOrderLane, LaneDirectory } from '../http/auth';
import { answerSlot } from '../http/idempotency';
import {
  couponCode,
  fen,
  instant,
  laneName,
  lineSchema,
  lines,
  noQuery,
  pageLimit,
  parse,
  pathParam,
  uuidParam,
} from '../http/validate';
import { DomainError, unprocessable } from '../shared/errors';
import { OrdersService } from './orders.service';

/** Strict (an unknown field is a 400 naming it); a capability adding fields (coupon, price override) `.extend()`s it. */
export const orderBody = z.object({ lane: laneName, lines }).strict();
/** A sale may carry one coupon, and a supervisor may ring a line at another price (unitPriceFen). */
const saleLines = z
  .array(lineSchema.extend({ unitPriceFen: fen.optional() }))
  .min(1, 'at least one line')
  .max(500, 'at most 500 lines');
const saleBody = orderBody.extend({ lines: saleLines, coupon: couponCode.optional() });
const noBody = z.object({}).strict();
const listQuery = z
  .object({
    lane: laneName.optional(),
    status: z.enum(['reserved', 'paid', 'cancelled', 'expired']).optional(),
    from: instant.optional(),
    to: instant.optional(),
    cursor: z.string().max(200).optional(),
    limit: pageLimit.optional(),
  })
  .strict();

export function ordersRoutes(orders: OrdersService, knownLane: LaneDirectory = () => true): Router {
  const r = Router();

  // A lane-bound cashier key acts only on its own lane's orders: every POST under /orders/:id
  // (cancel, tenders, and whatever a capability adds) is checked here, before the route runs.
  r.post('/orders/:id/{*rest}', async (req, _res, next) => {
    if (!req.principal?.lane) return next();
    // A cash tender checks the order's lane itself, under the lock it takes on the order anyway (one read
    // fewer per checkout): payments.routes passes the key's lane to the tender.
    if (req.params.rest?.join('/') === 'payments' && (req.body as { method?: unknown } | undefined)?.method === 'cash')
      return next();
    const id = pathParam('orderId', uuidParam, req.params.id);
    const lane = await orders.laneOf(id);
    if (lane !== null) checkOrderLane(req, lane);
    next();
  });

  r.post('/orders', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    const body = parse(saleBody, req.body);
    checkLane(req, body.lane);
    // A price override is a supervisor's act (audited with before/after in the service).
    if (body.lines.some((l) => l.unitPriceFen !== undefined) && req.principal!.role === 'cashier') {
      throw new DomainError(
        403,
        'price_override_forbidden',
        'changing a price (unitPriceFen) needs a backoffice or admin key',
      );
    }
    if (!knownLane(body.lane)) {
      throw unprocessable('unknown_lane', `lane ${body.lane} has no terminal and is not a cash lane (POS_LANES)`, {
        lane: body.lane,
      });
    }
    res.status(201).json(await orders.create(body, actorOf(req), answerSlot(req, 201)));
  });

  r.get('/orders', allow('cashier', 'backoffice'), async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    const bound = req.principal?.lane;
    if (bound && q.lane !== undefined && q.lane !== bound)
      throw new DomainError(403, 'wrong_lane', `this key is for lane ${bound}`);
    res.json(await orders.list({ ...q, lane: bound ?? q.lane, limit: q.limit ?? 100 }));
  });

  r.get('/orders/:id', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await orders.get(pathParam('orderId', uuidParam, req.params.id)));
  });

  r.post('/orders/:id/cancel', allow('cashier'), async (req, res) => {
    noQuery(req);
    parse(noBody, req.body ?? {}); // a cancel takes no fields: one sent is a mistake to name, not to ignore
    res.json(await orders.cancel(pathParam('orderId', uuidParam, req.params.id), actorOf(req)));
  });

  return r;
}
