/**
 * SKU barcodes (EAN-13) and what a lane's scanner can hand us: a pack's EAN-13, a SKU code typed
 * by hand, or the order code off a receipt (for a return). One lookup answers all three, so the
 * scan field needs no guessing in the page.
 */
import { Router } from 'express';
import { EntityManager } from 'typeorm';
import { z } from 'zod';
import { Db, rows } from '../db/db';
import { allow } from '../http/auth';
import { SKU_PATTERN, noQuery, pathParam } from '../http/validate';
import { DomainError, unprocessable } from '../shared/errors';
import { isOrderCode, orderIdOfCode } from '../receipts/order-code';
import { isValidEan13 } from './ean13';

/** `barcode` in PUT /v1/skus/:sku: 13 digits with a good check digit, or null to remove it. */
export const ean13Field = z
  .string()
  .regex(/^\d{13}$/, 'an EAN-13 barcode is 13 digits')
  .refine(isValidEan13, 'the EAN-13 check digit does not match; the code was mistyped or misread');

/** Sets or clears a SKU's barcode in the caller's transaction; 409 when another SKU carries it. */
export async function assignBarcode(m: EntityManager, sku: string, barcode: string | null): Promise<void> {
  if (barcode !== null) {
    const owner = await rows<{ sku: string }>(m, 'SELECT sku FROM sku WHERE barcode = ? AND sku <> ?', [barcode, sku]);
    if (owner.length)
      throw new DomainError(409, 'barcode_taken', `barcode ${barcode} is already on SKU ${owner[0].sku}`, {
        barcode,
        sku: owner[0].sku,
      });
  }
  await m.query('UPDATE sku SET barcode = ? WHERE sku = ?', [barcode, sku]);
}

export type ScanResult =
  | { kind: 'sku'; sku: string; name: string; priceFen: number; barcode: string | null; available: number }
  | { kind: 'order'; orderId: string; code: string };

export async function lookupCode(db: Db, code: string): Promise<ScanResult> {
  if (isOrderCode(code)) return { kind: 'order', orderId: orderIdOfCode(code), code };
  if (/^\d{13}$/.test(code) && !isValidEan13(code)) {
    throw unprocessable('invalid_barcode', 'the EAN-13 check digit does not match; scan again', { code });
  }
  type Row = {
    sku: string;
    name: string;
    price_fen: unknown;
    barcode: string | null;
    on_hand: unknown;
    reserved: unknown;
  };
  const found = await db.read((m) =>
    rows<Row>(
      m,
      "SELECT sku, name, price_fen, barcode, on_hand, reserved FROM sku WHERE kind = 'goods' AND (barcode = ? OR sku = ?) ORDER BY CASE WHEN barcode = ? THEN 0 ELSE 1 END",
      [code, code, code],
    ),
  );
  const r = found[0];
  if (!r) throw new DomainError(404, 'barcode_not_found', `nothing is known by the code ${code}`, { code });
  return {
    kind: 'sku',
    sku: r.sku,
    name: r.name,
    priceFen: Number(r.price_fen),
    barcode: r.barcode,
    available: Number(r.on_hand) - Number(r.reserved),
  };
}

const scanned = z.string().regex(SKU_PATTERN, 'not a barcode or SKU code');

export function barcodeRoutes(db: Db): Router {
  const r = Router();
  r.get('/barcodes/:code', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await lookupCode(db, pathParam('code', scanned, req.params.code)));
  });
  return r;
}
