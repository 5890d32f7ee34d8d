import { answerSlot } from '../http/idempotency';
import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkOrderLane } from '../http/auth';
import { noQuery, parse, pathParam, qty, uuidParam } from '../http/validate';
import { ReturnsService } from './returns.service';

const returnBody = z
  .object({
    lines: z
      .array(z.object({ lineNo: z.number().int().min(1).max(500), qty }).strict())
      .min(1, 'at least one line')
      .max(500),
    restock: z.boolean().optional(),
    reason: z.string().trim().min(1).max(2000).optional(),
  })
  .strict();
const resolveBody = z
  .object({ outcome: z.enum(['approved', 'failed']), note: z.string().trim().min(1, 'say why').max(2000) })
  .strict();
const cashBody = z.object({ note: z.string().trim().min(1, 'say how it was paid').max(2000) }).strict();

export function returnsRoutes(returns: ReturnsService): Router {
  const r = Router();

  r.post('/orders/:id/returns', allow('cashier'), async (req, res) => {
    noQuery(req);
    const orderId = pathParam('orderId', uuidParam, req.params.id);
    res
      .status(201)
      .json(await returns.create(orderId, parse(returnBody, req.body), actorOf(req), answerSlot(req, 201)));
  });

  r.get('/returns/:id', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await returns.get(pathParam('returnId', uuidParam, req.params.id)));
  });

  r.get('/refund-legs', allow('backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await returns.failedLegs());
  });

  r.post('/returns/:id/legs/:legId/cash', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    const returnId = pathParam('returnId', uuidParam, req.params.id);
    const legId = pathParam('legId', uuidParam, req.params.legId);
    const body = parse(cashBody, req.body);
    // A lane-bound key pays out only at its own lane's drawer.
    if (req.principal?.lane) {
      const lane = await returns.laneOf(returnId);
      if (lane !== null) checkOrderLane(req, lane);
    }
    res.json(await returns.payLegInCash(returnId, legId, body.note, actorOf(req)));
  });

  r.post('/returns/:id/legs/:legId/resolve', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const returnId = pathParam('returnId', uuidParam, req.params.id);
    const legId = pathParam('legId', uuidParam, req.params.legId);
    const body = parse(resolveBody, req.body);
    res.json(await returns.resolveLeg(returnId, legId, body.outcome, body.note, actorOf(req)));
  });

  return r;
}
