import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { fen, lines, parse, skuCode } from '../http/validate';
import { unprocessable } from '../shared/errors';
import { newId } from '../shared/ids';
import { InventoryService } from './inventory.service';
import { ean13Field } from './barcodes';

const skuBody = z.object({ name: z.string().trim().min(1).max(200), priceFen: fen, barcode: ean13Field.nullable().optional() });
const receiptBody = z.object({ lines, ref: z.string().min(1).max(64).optional() });

export function inventoryRoutes(inventory: InventoryService): Router {
  const r = Router();

  r.put('/skus/:sku', allow('backoffice'), async (req, res) => {
    const sku = parse(skuCode, req.params.sku);
    const body = parse(skuBody, req.body);
    const saved = await inventory.upsertSku({ sku, ...body }, actorOf(req));
    res.json({ sku: saved.sku, name: saved.name, priceFen: saved.priceFen, barcode: saved.barcode, onHand: saved.onHand, reserved: saved.reserved, available: saved.onHand - saved.reserved });
  });

  r.post('/stock/receipts', allow('backoffice'), async (req, res) => {
    const body = parse(receiptBody, req.body);
    const dup = body.lines.find((l, i) => body.lines.findIndex((x) => x.sku === l.sku) !== i);
    if (dup) throw unprocessable('duplicate_line', `SKU ${dup.sku} appears on more than one line`, { sku: dup.sku });
    const ref = body.ref ?? `rcpt_${newId()}`;
    const levels = await inventory.receive(body.lines, ref, actorOf(req));
    res.status(201).json({ ref, levels });
  });

  r.get('/stock/:sku', allow('cashier', 'backoffice'), async (req, res) => {
    res.json(await inventory.level(parse(skuCode, req.params.sku)));
  });

  return r;
}
