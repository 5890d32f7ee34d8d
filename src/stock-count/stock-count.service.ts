/**
 * Stock counts (盘点). A count notes each SKU's on-hand when it opens; a counted figure is
 * compared with the books *at the moment it was counted*, so sales, receipts and releases while
 * the shelves are being counted are never variance. A SKU whose on-hand changed after it was
 * counted is flagged (recount or accept). Approval posts one adjustment per SKU, all in one
 * transaction.
 *
 * The rule approval posts (defect 7, "a count that writes off twice"): when a SKU is counted we keep,
 * in the same instant, its on-hand (B) and what was on the books but off the shelf (H: every active
 * reservation — a cart at a till, goods with a customer whose card payment is pending, unknown or in
 * suspense; one row per order line in stock_count_hold). The shelf should then have shown B − H, so
 *
 *     adjustment = counted − (B − H) − G
 *
 * where G is the part of H whose reservation has since been *released* although its order had a card
 * payment that went unknown (the customer was let go with the goods and the card then failed: they
 * are gone and only a write-off takes them off the books). Everything else that happened since the
 * count moved the books and the shelf alike and is already posted once by its own movement: a held
 * line that was sold took its units off on-hand; a held cart that was cancelled put its goods back on
 * the shelf and on-hand never dropped; sales and receipts of shelf stock moved both. The adjustment is
 * posted against on-hand *now*, so nothing is taken twice. A held line still active at approval stays
 * held (its payment or cashier settles it later); it is not written off.
 */
import { randomUUID } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { Db, exec, placeholders, rows } from '../db/db';
import { Clock } from '../shared/clock';
import { conflict, notFound, unprocessable, DomainError } from '../shared/errors';
import { InventoryService } from '../inventory/inventory.service';
import { audit } from '../audit/audit.service';
import { CountEntry, LineError } from './csv';

export type CountStatus = 'open' | 'approved' | 'cancelled';

export interface CountLineView {
  sku: string;
  expectedAtOpen: number;
  /** What the system expects now: the opening figure plus every movement since. */
  expected: number;
  counted: number | null;
  /** What the system expected when this SKU was counted. */
  expectedAtCount: number | null;
  variance: number | null;
  /** What was on the books but off the shelf when this SKU was counted (active reservations). */
  heldByOpenPayments: number;
  /** Held units released since the count although their customer had left (a card that went unknown, then failed). */
  goneSinceCount: number;
  /** What approval posts: counted − (expectedAtCount − held) − gone. */
  adjustment: number | null;
  /** The shortfall approval would write off (held stock is not). */
  writeOff: number | null;
  movedSinceCount: boolean;
  varianceValueFen: number | null;
  postedDelta: number | null;
}

export interface CountTotals {
  skus: number;
  counted: number;
  withVariance: number;
  movedSinceCount: number;
  shrinkageUnits: number;
  shrinkageFen: number;
  heldUnits: number;
  heldFen: number;
  surplusUnits: number;
  surplusFen: number;
}

interface LineRow {
  sku: string;
  expected_at_open: unknown;
  counted: unknown;
  on_hand_at_count: unknown;
  held_at_count: unknown;
  posted_delta: unknown;
  on_hand: unknown;
  price_fen: unknown;
  gone: unknown;
  held_sold: unknown;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const PAGE = 5000;

function lineView(r: LineRow): CountLineView & { priceFen: number } {
  const onHand = Number(r.on_hand);
  const counted = num(r.counted);
  const atCount = num(r.on_hand_at_count);
  const held = Number(r.held_at_count ?? 0);
  const gone = Number(r.gone ?? 0);
  const variance = counted === null || atCount === null ? null : counted - atCount;
  const adjustment = variance === null ? null : variance + held - gone;
  const writeOff = adjustment === null ? null : Math.max(0, -adjustment);
  const price = Number(r.price_fen);
  return {
    sku: r.sku,
    expectedAtOpen: Number(r.expected_at_open),
    expected: onHand,
    counted,
    expectedAtCount: atCount,
    variance,
    // Moved = on hand changed by anything but the sale of goods that were already off the shelf when counted.
    heldByOpenPayments: held,
    goneSinceCount: gone,
    adjustment,
    writeOff,
    movedSinceCount: counted !== null && atCount !== onHand + Number(r.held_sold ?? 0),
    varianceValueFen: variance === null ? null : variance * price,
    postedDelta: num(r.posted_delta),
    priceFen: price,
  };
}

export class StockCountService {
  constructor(
    private readonly db: Db,
    private readonly inventory: InventoryService,
    private readonly clock: Clock,
  ) {}

  async open(skus: string[] | undefined, actor: string): Promise<{ id: string; status: CountStatus; skus: number }> {
    const id = randomUUID();
    const now = this.clock.now().getTime();
    return this.db.tx(async (m) => {
      if (skus) {
        const dup = skus.find((s, i) => skus.indexOf(s) !== i);
        if (dup) throw unprocessable('duplicate_sku', `SKU ${dup} is listed twice`, { sku: dup });
        const unknown: string[] = [];
        for (let i = 0; i < skus.length; i += 1000) {
          const chunk = skus.slice(i, i + 1000);
          const found = new Set(
            (
              await rows<{ sku: string }>(
                m,
                `SELECT sku FROM sku WHERE kind = 'goods' AND sku IN (${placeholders(chunk.length)})`,
                chunk,
              )
            ).map((r) => r.sku),
          );
          unknown.push(...chunk.filter((s) => !found.has(s)));
        }
        if (unknown.length)
          throw unprocessable('unknown_sku', `unknown SKU: ${unknown.slice(0, 20).join(', ')}`, {
            skus: unknown.slice(0, 100),
          });
      }
      await exec(
        m,
        'INSERT INTO stock_count (id, status, scope, skus, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [id, 'open', skus ? 'list' : 'all', 0, actor, now, now],
      );
      let n = 0;
      if (skus) {
        for (let i = 0; i < skus.length; i += 1000) {
          const chunk = skus.slice(i, i + 1000);
          n += await exec(
            m,
            `INSERT INTO stock_count_line (count_id, sku, expected_at_open) SELECT ?, sku, on_hand FROM sku WHERE sku IN (${placeholders(chunk.length)})`,
            [id, ...chunk],
          );
        }
      } else {
        n = await exec(
          m,
          "INSERT INTO stock_count_line (count_id, sku, expected_at_open) SELECT ?, sku, on_hand FROM sku WHERE kind = 'goods'",
          [id],
        );
      }
      await exec(m, 'UPDATE stock_count SET skus = ? WHERE id = ?', [n, id]);
      await audit(m, {
        actor,
        entity: 'stock_count',
        entityId: id,
        action: 'open',
        after: { scope: skus ? 'list' : 'all', skus: n },
        at: now,
      });
      return { id, status: 'open' as const, skus: n };
    });
  }

  private async countIn(
    m: EntityManager,
    id: string,
  ): Promise<{
    id: string;
    status: CountStatus;
    scope: string;
    skus: unknown;
    created_by: string;
    created_at: unknown;
    ended_by: string | null;
    ended_at: unknown;
  }> {
    const c = await rows<any>(m, 'SELECT * FROM stock_count WHERE id = ?', [id]);
    if (!c.length) throw notFound('stock_count', id);
    return c[0];
  }

  /** Takes the count for a change; 409 unless it is still open. */
  private async lockOpen(m: EntityManager, id: string, now: number): Promise<void> {
    const n = await exec(m, "UPDATE stock_count SET updated_at = ? WHERE id = ? AND status = 'open'", [now, id]);
    if (n === 1) return;
    const c = await this.countIn(m, id);
    throw conflict('count_not_open', `stock count ${id} is ${c.status}`, { status: c.status });
  }

  /** Records counted figures (all or nothing): a later figure for a SKU replaces the earlier one. */
  async record(
    id: string,
    entries: CountEntry[],
    errors: LineError[],
    actor: string,
  ): Promise<{ id: string; accepted: number }> {
    if (entries.length === 0 && errors.length === 0)
      throw unprocessable('empty_upload', 'the upload has no counted lines');
    const problems = [...errors];
    const firstSeen = new Map<string, number>();
    for (const e of entries) {
      const prev = firstSeen.get(e.sku);
      if (prev !== undefined) problems.push({ line: e.line, message: `SKU ${e.sku} already appears on line ${prev}` });
      else firstSeen.set(e.sku, e.line);
    }
    const now = this.clock.now().getTime();
    const uploadId = randomUUID();
    return this.db.tx(async (m) => {
      await this.lockOpen(m, id, now);
      for (let i = 0; i < entries.length; i += 1000) {
        const chunk = entries.slice(i, i + 1000);
        const skus = [...new Set(chunk.map((e) => e.sku))];
        const inCount = new Set(
          (
            await rows<{ sku: string }>(
              m,
              `SELECT sku FROM stock_count_line WHERE count_id = ? AND sku IN (${placeholders(skus.length)})`,
              [id, ...skus],
            )
          ).map((r) => r.sku),
        );
        for (const e of chunk)
          if (!inCount.has(e.sku)) problems.push({ line: e.line, message: `SKU ${e.sku} is not in this count` });
      }
      if (problems.length) {
        problems.sort((a, b) => a.line - b.line);
        throw new DomainError(
          422,
          'invalid_count_lines',
          `${problems.length} line(s) cannot be used; nothing was recorded (first: line ${problems[0].line}: ${problems[0].message})`,
          { errorCount: problems.length, errors: problems.slice(0, 200) },
        );
      }
      for (let i = 0; i < entries.length; i += 500) {
        const chunk = entries.slice(i, i + 500);
        await exec(
          m,
          `INSERT INTO stock_count_entry (count_id, upload_id, line_no, sku, counted, counted_by, at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flatMap((e) => [id, uploadId, e.line, e.sku, e.counted, actor, now]),
        );
      }
      // The line takes the counted figure, the on-hand and what was held at that moment, read as one
      // snapshot: on MySQL the SKU rows are locked first so no sale or reservation lands between the reads.
      if (this.db.kind === 'mysql') {
        const skus = entries.map((e) => e.sku).sort();
        for (let i = 0; i < skus.length; i += 1000) {
          const chunk = skus.slice(i, i + 1000);
          await rows(
            m,
            `SELECT sku FROM sku WHERE sku IN (${placeholders(chunk.length)}) ORDER BY sku FOR UPDATE`,
            chunk,
          );
        }
        await exec(
          m,
          `UPDATE stock_count_line l JOIN stock_count_entry e ON e.count_id = l.count_id AND e.sku = l.sku JOIN sku s ON s.sku = l.sku
          SET l.counted = e.counted, l.on_hand_at_count = s.on_hand, l.held_at_count = s.reserved, l.counted_at = ?, l.counted_by = ? WHERE e.upload_id = ?`,
          [now, actor, uploadId],
        );
      } else {
        await exec(
          m,
          `UPDATE stock_count_line SET counted = e.counted, on_hand_at_count = s.on_hand, held_at_count = s.reserved, counted_at = ?, counted_by = ?
          FROM stock_count_entry e JOIN sku s ON s.sku = e.sku WHERE e.upload_id = ? AND e.count_id = stock_count_line.count_id AND e.sku = stock_count_line.sku`,
          [now, actor, uploadId],
        );
      }
      // Which order lines held those units (a recount replaces the earlier snapshot of its SKUs).
      await exec(
        m,
        'DELETE FROM stock_count_hold WHERE count_id = ? AND sku IN (SELECT sku FROM stock_count_entry WHERE upload_id = ?)',
        [id, uploadId],
      );
      await exec(
        m,
        `INSERT INTO stock_count_hold (count_id, order_line_id, sku, order_id, qty)
        SELECT ?, ol.id, ol.sku, ol.order_id, ol.qty FROM stock_count_entry e JOIN order_line ol ON ol.sku = e.sku AND ol.reservation = 'active'
         WHERE e.upload_id = ?`,
        [id, uploadId],
      );
      await audit(m, {
        actor,
        entity: 'stock_count',
        entityId: id,
        action: 'record',
        after: { uploadId, lines: entries.length },
        at: now,
      });
      return { id, accepted: entries.length };
    });
  }

  private async page(
    m: EntityManager,
    id: string,
    afterSku: string | null,
    limit: number,
    onlyCounted = false,
  ): Promise<LineRow[]> {
    return rows<LineRow>(
      m,
      `
      SELECT l.sku, l.expected_at_open, l.counted, l.on_hand_at_count, l.held_at_count, l.posted_delta, s.on_hand, s.price_fen,
             (SELECT COALESCE(SUM(h.qty), 0) FROM stock_count_hold h JOIN order_line ol ON ol.id = h.order_line_id
               WHERE h.count_id = l.count_id AND h.sku = l.sku AND ol.reservation = 'released'
                 AND EXISTS (SELECT 1 FROM payment p WHERE p.order_id = h.order_id AND p.unknown_since IS NOT NULL)) AS gone,
             (SELECT COALESCE(SUM(h.qty), 0) FROM stock_count_hold h JOIN order_line ol ON ol.id = h.order_line_id
               WHERE h.count_id = l.count_id AND h.sku = l.sku AND ol.reservation = 'sold') AS held_sold
        FROM stock_count_line l JOIN sku s ON s.sku = l.sku
       WHERE l.count_id = ?${afterSku !== null ? ' AND l.sku > ?' : ''}${onlyCounted ? ' AND l.counted IS NOT NULL' : ''}
       ORDER BY l.sku LIMIT ${Number(limit)}`,
      afterSku !== null ? [id, afterSku] : [id],
    );
  }

  /** Every line in SKU order, a page at a time (a count can have 100 000 SKUs). */
  async *lines(id: string, onlyCounted = false): AsyncGenerator<CountLineView & { priceFen: number }> {
    let after: string | null = null;
    for (;;) {
      const page = await this.db.read((m) => this.page(m, id, after, PAGE, onlyCounted));
      for (const r of page) yield lineView(r);
      if (page.length < PAGE) return;
      after = page[page.length - 1].sku;
    }
  }

  async view(
    id: string,
    opts: { after?: string; limit: number },
  ): Promise<{
    id: string;
    status: CountStatus;
    scope: string;
    createdAt: string;
    endedAt: string | null;
    totals: CountTotals;
    lines: CountLineView[];
    next: string | null;
  }> {
    const c = await this.db.read((m) => this.countIn(m, id));
    const totals: CountTotals = {
      skus: 0,
      counted: 0,
      withVariance: 0,
      movedSinceCount: 0,
      shrinkageUnits: 0,
      shrinkageFen: 0,
      heldUnits: 0,
      heldFen: 0,
      surplusUnits: 0,
      surplusFen: 0,
    };
    for await (const l of this.lines(id)) addToTotals(totals, l);
    const page = await this.db.read((m) => this.page(m, id, opts.after ?? null, opts.limit));
    const lines = page.map((r) => {
      const { priceFen: _p, ...v } = lineView(r);
      return v;
    });
    return {
      id,
      status: c.status,
      scope: c.scope,
      createdAt: new Date(Number(c.created_at)).toISOString(),
      endedAt: c.ended_at ? new Date(Number(c.ended_at)).toISOString() : null,
      totals,
      lines,
      next: page.length === opts.limit ? page[page.length - 1].sku : null,
    };
  }

  async approve(
    id: string,
    acceptMoved: boolean,
    actor: string,
  ): Promise<{ id: string; status: CountStatus; adjustments: number; totals: CountTotals }> {
    const now = this.clock.now().getTime();
    return this.db.tx(async (m) => {
      await this.lockOpen(m, id, now);
      const totals: CountTotals = {
        skus: 0,
        counted: 0,
        withVariance: 0,
        movedSinceCount: 0,
        shrinkageUnits: 0,
        shrinkageFen: 0,
        heldUnits: 0,
        heldFen: 0,
        surplusUnits: 0,
        surplusFen: 0,
      };
      const moved: string[] = [];
      const deltas: { sku: string; delta: number }[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await this.page(m, id, after, PAGE, true);
        for (const r of page) {
          const l = lineView(r);
          addToTotals(totals, l);
          if (l.movedSinceCount) moved.push(l.sku);
          const delta = l.adjustment!;
          if (delta !== 0) deltas.push({ sku: l.sku, delta });
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1].sku;
      }
      if (moved.length && !acceptMoved) {
        throw conflict(
          'moved_since_count',
          `${moved.length} SKU(s) changed after they were counted: recount them or approve with acceptMoved`,
          { skus: moved.slice(0, 200), count: moved.length },
        );
      }
      for (const d of deltas) {
        await this.inventory.adjust(m, d.sku, d.delta, `count:${id}`, actor);
        await exec(m, 'UPDATE stock_count_line SET posted_delta = ? WHERE count_id = ? AND sku = ?', [
          d.delta,
          id,
          d.sku,
        ]);
      }
      await exec(
        m,
        "UPDATE stock_count SET status = 'approved', ended_by = ?, ended_at = ?, updated_at = ? WHERE id = ?",
        [actor, now, now, id],
      );
      await audit(m, {
        actor,
        entity: 'stock_count',
        entityId: id,
        action: 'approve',
        before: { status: 'open' },
        after: { status: 'approved', adjustments: deltas.length, acceptedMoved: moved.length, totals },
        at: now,
      });
      return { id, status: 'approved' as const, adjustments: deltas.length, totals };
    });
  }

  async cancel(id: string, actor: string): Promise<{ id: string; status: CountStatus }> {
    const now = this.clock.now().getTime();
    return this.db.tx(async (m) => {
      await this.lockOpen(m, id, now);
      await exec(
        m,
        "UPDATE stock_count SET status = 'cancelled', ended_by = ?, ended_at = ?, updated_at = ? WHERE id = ?",
        [actor, now, now, id],
      );
      await audit(m, {
        actor,
        entity: 'stock_count',
        entityId: id,
        action: 'cancel',
        before: { status: 'open' },
        after: { status: 'cancelled' },
        at: now,
      });
      return { id, status: 'cancelled' as const };
    });
  }

  async exists(id: string): Promise<void> {
    await this.db.read((m) => this.countIn(m, id));
  }
}

function addToTotals(t: CountTotals, l: CountLineView & { priceFen: number }): void {
  t.skus++;
  if (l.counted === null) return;
  t.counted++;
  if (l.movedSinceCount) t.movedSinceCount++;
  const a = l.adjustment!;
  if (a !== 0) t.withVariance++;
  if (a > 0) {
    t.surplusUnits += a;
    t.surplusFen += a * l.priceFen;
  }
  if (a < 0) {
    t.shrinkageUnits += -a;
    t.shrinkageFen += -a * l.priceFen;
  }
  t.heldUnits += l.heldByOpenPayments;
  t.heldFen += l.heldByOpenPayments * l.priceFen;
}
