import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { laneName, parse, positiveFen } from '../http/validate';
import { PaymentsService } from './payments.service';

const uuid = z.string().uuid('not an id');
const tenderBody = z.object({
  method: z.enum(['card', 'cash']),
  amountFen: positiveFen,
  lane: laneName,
  acceptUnknownCard: z.boolean().optional(),
});
const resolveBody = z.object({ outcome: z.enum(['approved', 'declined']), note: z.string().trim().min(1, 'say why').max(2000) });
const statusQuery = z.object({
  status: z.enum(['pending', 'approved', 'declined', 'unknown', 'reversed', 'suspense']).optional(),
  refund: z.enum(['queued', 'in_progress', 'done', 'failed', 'unknown', 'manual']).optional(),
});
const waitQuery = z.object({ wait: z.coerce.number().min(0).max(60).optional() });

export function paymentsRoutes(payments: PaymentsService): Router {
  const r = Router();

  r.post('/orders/:id/payments', allow('cashier'), async (req, res) => {
    const id = parse(uuid, req.params.id);
    const body = parse(tenderBody, req.body);
    checkLane(req, body.lane);
    const p = await payments.tender(id, body, actorOf(req));
    res.status(p.method === 'card' ? 202 : 201).json(p);
  });

  r.get('/payments/:id', allow('cashier', 'backoffice'), async (req, res) => {
    const { wait } = parse(waitQuery, req.query);
    res.json(await payments.get(parse(uuid, req.params.id), wait ?? 0));
  });

  r.get('/payments', allow('backoffice'), async (req, res) => {
    const { status, refund } = parse(statusQuery, req.query);
    res.json(await payments.list(status, 500, refund));
  });

  r.post('/payments/:id/resolve', allow('backoffice'), async (req, res) => {
    const body = parse(resolveBody, req.body);
    res.json(await payments.resolve(parse(uuid, req.params.id), body.outcome, body.note, actorOf(req)));
  });

  return r;
}
