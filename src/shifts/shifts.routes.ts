import { RequestHandler, Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { fen, laneName, parse } from '../http/validate';
import { ShiftsService } from './shifts.service';

const shiftId = z.string().uuid('not a shift id');
const openBody = z.object({ lane: laneName, floatFen: fen });
const closeBody = z.object({ countedCashFen: fen });
const isoTime = z.iso.datetime({ offset: true, message: 'an ISO 8601 date-time, e.g. 2026-11-25T00:00:00+08:00' }).transform((s) => Date.parse(s));
const listQuery = z.object({
  lane: laneName.optional(),
  status: z.enum(['open', 'closed']).optional(),
  from: isoTime.optional(),
  to: isoTime.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

export function shiftsRoutes(shifts: ShiftsService): Router {
  const r = Router();

  r.post('/shifts', allow('cashier'), async (req, res) => {
    const body = parse(openBody, req.body);
    checkLane(req, body.lane);
    res.status(201).json(await shifts.open(body, actorOf(req)));
  });

  r.post('/shifts/:id/close', allow('cashier'), async (req, res) => {
    const id = parse(shiftId, req.params.id);
    const body = parse(closeBody, req.body);
    res.json(await shifts.close(id, body.countedCashFen, actorOf(req), req.principal!.lane));
  });

  r.get('/shifts/:id/report', allow('cashier', 'backoffice'), async (req, res) => {
    res.json(await shifts.report(parse(shiftId, req.params.id), req.principal!.lane));
  });

  r.get('/shifts', allow('cashier', 'backoffice'), async (req, res) => {
    const q = parse(listQuery, req.query);
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
