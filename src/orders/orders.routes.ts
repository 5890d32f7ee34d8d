import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { fen, laneName, parse, qty, skuCode } from '../http/validate';
import { DomainError } from '../shared/errors';
import { OrdersService } from './orders.service';

const orderLines = z.array(z.object({ sku: skuCode, qty, unitPriceFen: fen.optional() })).min(1, 'at least one line').max(500, 'at most 500 lines');
const couponCode = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$/, 'a coupon code is 1–64 letters, digits, _ -');
const orderBody = z.object({ lane: laneName, lines: orderLines, coupon: couponCode.optional() });
const orderId = z.string().uuid('not an order id');

export function ordersRoutes(orders: OrdersService): Router {
  const r = Router();

  r.post('/orders', allow('cashier', 'backoffice'), async (req, res) => {
    const body = parse(orderBody, req.body);
    checkLane(req, body.lane);
    // A price override is a supervisor's act (audited with before/after in the service).
    if (body.lines.some((l) => l.unitPriceFen !== undefined) && req.principal!.role === 'cashier') {
      throw new DomainError(403, 'price_override_forbidden', 'changing a price (unitPriceFen) needs a backoffice or admin key');
    }
    res.status(201).json(await orders.create(body, actorOf(req)));
  });

  r.get('/orders/:id', allow('cashier', 'backoffice'), async (req, res) => {
    res.json(await orders.get(parse(orderId, req.params.id)));
  });

  r.post('/orders/:id/cancel', allow('cashier'), async (req, res) => {
    res.json(await orders.cancel(parse(orderId, req.params.id), actorOf(req)));
  });

  return r;
}
