import { answerSlot } from '../http/idempotency';
import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { fen, lines, noQuery, pageLimit, parse, pathParam, skuCode } from '../http/validate';
import { unprocessable } from '../shared/errors';
import { newId } from '../shared/ids';
import { InventoryService } from './inventory.service';
import { ean13Field } from './barcodes';

const skuBody = z
  .object({ name: z.string().trim().min(1).max(200), priceFen: fen, barcode: ean13Field.nullable().optional() })
  .strict();
const receiptBody = z.object({ lines, ref: z.string().min(1).max(64).optional() }).strict();
const listQuery = z
  .object({
    q: z.string().max(200).optional(),
    kind: z.enum(['goods', 'seat']).optional(),
    cursor: skuCode.optional(),
    limit: pageLimit.optional(),
  })
  .strict();

export function inventoryRoutes(inventory: InventoryService): Router {
  const r = Router();

  r.get('/skus', allow('cashier', 'backoffice'), async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    res.json(await inventory.listSkus({ ...q, limit: q.limit ?? 100 }));
  });

  r.put('/skus/:sku', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const sku = pathParam('sku', skuCode, req.params.sku);
    const body = parse(skuBody, req.body);
    const saved = await inventory.upsertSku({ sku, ...body }, actorOf(req));
    res.json({
      sku: saved.sku,
      name: saved.name,
      priceFen: saved.priceFen,
      barcode: saved.barcode,
      onHand: saved.onHand,
      reserved: saved.reserved,
      available: saved.onHand - saved.reserved,
    });
  });

  r.post('/stock/receipts', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const body = parse(receiptBody, req.body);
    const dup = body.lines.find((l, i) => body.lines.findIndex((x) => x.sku === l.sku) !== i);
    if (dup) throw unprocessable('duplicate_line', `SKU ${dup.sku} appears on more than one line`, { sku: dup.sku });
    const ref = body.ref ?? `rcpt_${newId()}`;
    const levels = await inventory.receive(body.lines, ref, actorOf(req), 'goods', answerSlot(req, 201));
    res.status(201).json({ ref, levels });
  });

  r.get('/stock/:sku', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await inventory.level(pathParam('sku', skuCode, req.params.sku)));
  });

  return r;
}
