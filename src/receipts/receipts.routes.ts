import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane } from '../http/auth';
import { parse } from '../http/validate';
import { ReceiptsService } from './receipts.service';
import { docToText } from './receipt-doc';
import { PrintQueue } from '../printer/print-queue';
import { Db, rows } from '../db/db';
import { notFound } from '../shared/errors';

const orderId = z.string().uuid('not an order id');

export function receiptsRoutes(db: Db, receipts: ReceiptsService, queue: PrintQueue): Router {
  const r = Router();

  /** The receipt as printed, as text (UTF-8). 409 order_not_paid before the order is paid. */
  r.get('/orders/:id/receipt', allow('cashier', 'backoffice'), async (req, res) => {
    const doc = await receipts.forOrder(parse(orderId, req.params.id));
    res.type('text/plain; charset=utf-8').send(docToText(doc));
  });

  /** Queues a reprint (marked 重印) on the order's lane printer. */
  r.post('/orders/:id/receipt/reprint', allow('cashier', 'backoffice'), async (req, res) => {
    const id = parse(orderId, req.params.id);
    const [order] = await db.read((m) => rows<{ lane: string }>(m, 'SELECT lane FROM orders WHERE id = ?', [id]));
    if (!order) throw notFound('order', id);
    checkLane(req, order.lane);
    await receipts.forOrder(id, true); // 409 before queueing anything when there is nothing to print
    const jobId = await queue.enqueue({ lane: order.lane, kind: 'reprint', orderId: id, actor: actorOf(req) });
    res.status(202).json({ jobId, lane: order.lane, status: 'queued' });
  });

  return r;
}
