import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { laneName, lines, parse } from '../http/validate';
import { OrdersService } from './orders.service';

const orderBody = z.object({ lane: laneName, lines });
const orderId = z.string().uuid('not an order id');

export function ordersRoutes(orders: OrdersService): Router {
  const r = Router();

  r.post('/orders', allow('cashier'), async (req, res) => {
    const body = parse(orderBody, req.body);
    checkLane(req, body.lane);
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
