import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { parse, qty } from '../http/validate';
import { ReturnsService } from './returns.service';

const uuid = z.string().uuid('not an id');
const returnBody = z.object({
  lines: z.array(z.object({ lineNo: z.number().int().min(1).max(500), qty }).strict()).min(1, 'at least one line').max(500),
  restock: z.boolean().optional(),
  reason: z.string().trim().min(1).max(2000).optional(),
}).strict();
const cashBody = z.object({ note: z.string().trim().min(1, 'say how it was paid').max(2000) }).strict();

export function returnsRoutes(returns: ReturnsService): Router {
  const r = Router();

  r.post('/orders/:id/returns', allow('cashier'), async (req, res) => {
    const orderId = parse(uuid, req.params.id);
    res.status(201).json(await returns.create(orderId, parse(returnBody, req.body), actorOf(req)));
  });

  r.get('/returns/:id', allow('cashier', 'backoffice'), async (req, res) => {
    res.json(await returns.get(parse(uuid, req.params.id)));
  });

  r.get('/refund-legs', allow('backoffice'), async (_req, res) => {
    res.json(await returns.failedLegs());
  });

  r.post('/returns/:id/legs/:legId/cash', allow('cashier', 'backoffice'), async (req, res) => {
    const body = parse(cashBody, req.body);
    res.json(await returns.payLegInCash(parse(uuid, req.params.id), parse(uuid, req.params.legId), body.note, actorOf(req)));
  });

  return r;
}
