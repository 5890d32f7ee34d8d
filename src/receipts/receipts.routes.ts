import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { parse } from '../http/validate';
import { ReceiptsService } from './receipts.service';
import { docToText } from './receipt-doc';

const orderId = z.string().uuid('not an order id');

export function receiptsRoutes(receipts: ReceiptsService): Router {
  const r = Router();

  /** The receipt as printed, as text (UTF-8). 409 order_not_paid before the order is paid. */
  r.get('/orders/:id/receipt', allow('cashier', 'backoffice'), async (req, res) => {
    const doc = await receipts.forOrder(parse(orderId, req.params.id));
    res.type('text/plain; charset=utf-8').send(docToText(doc));
  });

  /** Queues a reprint (marked 重印) on the order's lane printer. */
  r.post('/orders/:id/receipt/reprint', allow('cashier', 'backoffice'), async (req, res) => {
    res.status(202).json(await receipts.reprint(parse(orderId, req.params.id), actorOf(req), req.principal!.lane));
  });

  return r;
}
