/**
 * The batched side of reserve() and commitSale(): many orders' stock changes in one transaction.
 *
 *  1. lockStock: every SKU the batch touches, locked once, in sorted order (SELECT … FOR UPDATE), so
 *     two batches (or a batch and a single unit of work) never wait on each other in a cycle;
 *  2. allocate: each order in arrival order, in memory, all-or-nothing per order, against what the
 *     locked rows say is available — a short order is refused without failing its neighbours;
 *  3. applyHolds / applySales: the movement rows in one multi-row INSERT, then ONE guarded UPDATE
 *     per SKU with the batch's total. The WHERE stays the guard: if it changes no row, the batch
 *     throws and rolls back, and the caller falls back to one order at a time.
 */
import { EntityManager } from 'typeorm';
import { Stmt, placeholders, rows, runAll } from '../db/db';
import { multiRowInsert } from '../db/batch';
import { DomainError, unprocessable } from '../shared/errors';
import { SkuKind } from './sku.entity';
import { InsufficientStockError, ReservationRequest, Shortfall } from './inventory.service';

export interface StockRow {
  sku: string;
  kind: SkuKind;
  priceFen: number;
  onHand: number;
  reserved: number;
}

export interface HoldRequest {
  orderId: string;
  skuKind: SkuKind;
  /** Distinct SKUs. */
  lines: ReservationRequest[];
  actor: string;
}

export type HoldVerdict = { ok: true } | { ok: false; error: DomainError };

/** A guarded UPDATE changed no row: what memory believed about the locked rows was wrong. Roll back. */
export class BatchGuardError extends Error {}

const bySku = <T extends { sku: string }>(a: T, b: T) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0);

export async function lockStock(
  m: EntityManager,
  skus: Iterable<string>,
  forUpdate: string,
): Promise<Map<string, StockRow>> {
  const sorted = [...new Set(skus)].sort();
  const out = new Map<string, StockRow>();
  for (let i = 0; i < sorted.length; i += 500) {
    const chunk = sorted.slice(i, i + 500);
    const r = await rows<{ sku: string; kind: SkuKind; price_fen: unknown; on_hand: unknown; reserved: unknown }>(
      m,
      `SELECT sku, kind, price_fen, on_hand, reserved FROM sku WHERE sku IN (${placeholders(chunk.length)}) ORDER BY sku${forUpdate}`,
      chunk,
    );
    for (const x of r)
      out.set(x.sku, {
        sku: x.sku,
        kind: x.kind,
        priceFen: Number(x.price_fen),
        onHand: Number(x.on_hand),
        reserved: Number(x.reserved),
      });
  }
  return out;
}

/**
 * Decides each request in arrival order against the locked rows, consuming availability in memory.
 * `admit` may still refuse a request whose stock fits (it then consumes nothing). Returns one verdict
 * per request and the total to reserve per SKU for the accepted ones.
 */
export function allocate(
  stock: Map<string, StockRow>,
  requests: HoldRequest[],
  admit?: (i: number) => DomainError | null,
): { verdicts: HoldVerdict[]; totals: Map<string, number> } {
  const available = new Map([...stock.values()].map((s) => [s.sku, s.onHand - s.reserved]));
  const totals = new Map<string, number>();
  const verdicts = requests.map((req, i): HoldVerdict => {
    const unknown = req.lines.filter((l) => stock.get(l.sku)?.kind !== req.skuKind).map((l) => l.sku);
    if (unknown.length)
      return {
        ok: false,
        error: unprocessable('unknown_sku', `unknown SKU: ${unknown.join(', ')}`, { skus: unknown }),
      };
    const short: Shortfall[] = req.lines
      .filter((l) => available.get(l.sku)! < l.qty)
      .map((l) => ({ sku: l.sku, requested: l.qty, available: Math.max(0, available.get(l.sku)!) }));
    if (short.length) return { ok: false, error: new InsufficientStockError(short.sort(bySku)) };
    // The order's other scarce things (a coupon use) are decided after its stock, before any is consumed.
    const refused = admit?.(i);
    if (refused) return { ok: false, error: refused };
    for (const l of req.lines) {
      available.set(l.sku, available.get(l.sku)! - l.qty);
      totals.set(l.sku, (totals.get(l.sku) ?? 0) + l.qty);
    }
    return { ok: true };
  });
  return { verdicts, totals };
}

export const MOVEMENT_COLUMNS = [
  'sku',
  'kind',
  'on_hand_delta',
  'reserved_delta',
  'order_id',
  'order_line_id',
  'ref',
  'actor',
  'at',
];

/** Reservation movements for the accepted requests, then one guarded UPDATE per SKU (sorted) with the batch's total. */
export async function applyHolds(
  m: EntityManager,
  accepted: HoldRequest[],
  totals: Map<string, number>,
  now: number,
): Promise<void> {
  await runAll(m, holdStatements(accepted, totals, now));
}

/** applyHolds' statements (the movements, then one guarded UPDATE per SKU in sorted order), for db.runAll. */
export function holdStatements(accepted: HoldRequest[], totals: Map<string, number>, now: number): Stmt[] {
  const movements = accepted.flatMap((r) =>
    [...r.lines].sort(bySku).map((l) => [l.sku, 'reservation', 0, l.qty, r.orderId, l.lineId, null, r.actor, now]),
  );
  const out: Stmt[] = multiRowInsert('stock_movement', MOVEMENT_COLUMNS, movements);
  for (const [sku, total] of [...totals].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    out.push({
      sql: 'UPDATE sku SET reserved = reserved + ?, updated_at = ? WHERE sku = ? AND on_hand - reserved >= ?',
      params: [total, now, sku, total],
      guard: {
        rows: 1,
        error: () =>
          new BatchGuardError(`batch reservation of ${total} × ${sku} found less available than its locked read`),
      },
    });
  }
  return out;
}

export interface SaleLine {
  orderId: string;
  lineId: string;
  sku: string;
  qty: number;
  actor: string;
}

/**
 * Ends the given active reservations as sales: one conditional UPDATE of the lines (they must all
 * still be active: the caller holds their orders' row locks), the sale movements in one INSERT, then
 * one guarded UPDATE per SKU (sorted) with the batch's total.
 */
export async function applySales(m: EntityManager, lines: SaleLine[], now: number): Promise<void> {
  await runAll(m, saleStatements(lines, now));
}

/** applySales' statements, for db.runAll. */
export function saleStatements(lines: SaleLine[], now: number): Stmt[] {
  if (lines.length === 0) return [];
  const out: Stmt[] = [];
  for (let i = 0; i < lines.length; i += 500) {
    const chunk = lines.slice(i, i + 500);
    out.push({
      sql: `UPDATE order_line SET reservation = 'sold', ended_at = ? WHERE reservation = 'active' AND id IN (${placeholders(chunk.length)})`,
      params: [now, ...chunk.map((l) => l.lineId)],
      guard: {
        rows: chunk.length,
        error: () => new BatchGuardError(`batch sale ended fewer than ${chunk.length} reservations`),
      },
    });
  }
  const sorted = [...lines].sort(bySku);
  const movements = sorted.map((l) => [l.sku, 'sale', -l.qty, -l.qty, l.orderId, l.lineId, null, l.actor, now]);
  out.push(...multiRowInsert('stock_movement', MOVEMENT_COLUMNS, movements));
  const totals = new Map<string, number>();
  for (const l of sorted) totals.set(l.sku, (totals.get(l.sku) ?? 0) + l.qty);
  for (const [sku, total] of totals) {
    out.push({
      sql: 'UPDATE sku SET on_hand = on_hand - ?, reserved = reserved - ?, updated_at = ? WHERE sku = ? AND reserved >= ?',
      params: [total, total, now, sku, total],
      guard: { rows: 1, error: () => new BatchGuardError(`batch sale of ${total} × ${sku} found less reserved`) },
    });
  }
  return out;
}
