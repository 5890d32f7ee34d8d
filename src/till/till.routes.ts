import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { fen, laneName, lines, noQuery, parse, pathParam, skuCode, uuidParam } from '../http/validate';
import { TillService } from './till.service';

export const itemQuery = z
  .object({ q: z.string().trim().min(1).max(64), limit: z.coerce.number().int().min(1).max(50).optional() })
  .strict();
export const quoteBody = z.object({ lines }).strict();
export const cashBody = z
  .object({ lane: laneName, tenderedFen: fen, acceptUnknownCard: z.boolean().optional() })
  .strict();

export function tillRoutes(till: TillService): Router {
  const r = Router();

  r.get('/till/items/:code', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await till.item(pathParam('code', skuCode, req.params.code)));
  });

  r.get('/till/items', allow('cashier', 'backoffice'), async (req, res) => {
    const q = parse(itemQuery, req.query, 'query');
    res.json({ items: await till.search(q.q, q.limit ?? 20) });
  });

  r.post('/till/quote', allow('cashier'), async (req, res) => {
    noQuery(req);
    res.json(await till.quote(parse(quoteBody, req.body).lines));
  });

  r.post('/till/orders/:id/cash', allow('cashier'), async (req, res) => {
    noQuery(req);
    const id = pathParam('orderId', uuidParam, req.params.id);
    const body = parse(cashBody, req.body);
    checkLane(req, body.lane);
    res.status(201).json(await till.cash(id, { ...body, keyLane: req.principal?.lane ?? null }, actorOf(req)));
  });

  return r;
}
