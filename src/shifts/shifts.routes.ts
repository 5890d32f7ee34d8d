import { RequestHandler, Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { fen, instant, laneName, noQuery, pageLimit, parse, pathParam, uuidParam } from '../http/validate';
import { unprocessable } from '../shared/errors';
import { ShiftsService } from './shifts.service';

const openBody = z.object({ lane: laneName, floatFen: fen }).strict();
const closeBody = z.object({ countedCashFen: fen }).strict();
const listQuery = z
  .object({
    lane: laneName.optional(),
    status: z.enum(['open', 'closed']).optional(),
    from: instant.optional(),
    to: instant.optional(),
    limit: pageLimit.max(200).default(50),
    offset: z.coerce.number().int('a whole number').min(0).max(1_000_000).default(0),
  })
  .strict();

export function shiftsRoutes(shifts: ShiftsService, knownLane: (lane: string) => boolean): Router {
  const r = Router();

  r.post('/shifts', allow('cashier'), async (req, res) => {
    noQuery(req);
    const body = parse(openBody, req.body);
    checkLane(req, body.lane);
    if (!knownLane(body.lane))
      throw unprocessable('unknown_lane', `lane ${body.lane} has no terminal and is not a cash lane (POS_LANES)`, {
        lane: body.lane,
      });
    res.status(201).json(await shifts.open(body, actorOf(req)));
  });

  r.post('/shifts/:id/close', allow('cashier'), async (req, res) => {
    noQuery(req);
    const id = pathParam('shiftId', uuidParam, req.params.id);
    const body = parse(closeBody, req.body);
    res.json(await shifts.close(id, body.countedCashFen, actorOf(req), req.principal!.lane));
  });

  r.get('/shifts/:id/report', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await shifts.report(pathParam('shiftId', uuidParam, req.params.id), req.principal!.lane));
  });

  r.get('/shifts', allow('cashier', 'backoffice'), async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    // A lane-bound key sees its own lane's shifts.
    const lane = req.principal!.lane ?? q.lane;
    if (q.lane) checkLane(req, q.lane);
    res.json(await shifts.list({ ...q, lane }));
  });

  return r;
}

/**
 * POS_SHIFTS=on: new orders and tenders need an open shift on their lane (409 no_open_shift).
 * Mounted before the order routes; it reads only the lane of the body, the routes still validate it all.
 */
export function requireOpenShift(shifts: ShiftsService): RequestHandler {
  return async (req, _res, next) => {
    const creates = req.method === 'POST' && (req.path === '/orders' || /^\/orders\/[^/]+\/payments$/.test(req.path));
    const lane = (req.body as { lane?: unknown } | undefined)?.lane;
    if (creates && typeof lane === 'string') await shifts.requireOpen(lane);
    next();
  };
}
