import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { noQuery, parse, pathParam, uuidParam } from '../http/validate';
import { ReceiptsService } from './receipts.service';
import { docToText } from './receipt-doc';

const noBody = z.object({}).strict();

export function receiptsRoutes(receipts: ReceiptsService): Router {
  const r = Router();

  /** The receipt as printed, as text (UTF-8). 409 order_not_paid before the order is paid. */
  r.get('/orders/:id/receipt', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    const doc = await receipts.forOrder(pathParam('orderId', uuidParam, req.params.id));
    res.type('text/plain; charset=utf-8').send(docToText(doc));
  });

  /** Queues a reprint (marked 重印) on the order's lane printer. Takes no fields. */
  r.post('/orders/:id/receipt/reprint', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    parse(noBody, req.body ?? {});
    res
      .status(202)
      .json(await receipts.reprint(pathParam('orderId', uuidParam, req.params.id), actorOf(req), req.principal!.lane));
  });

  return r;
}
