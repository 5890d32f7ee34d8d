import { AnswerSlot, answerCommitted, storeAnswers } from '../http/idempotency';
import { EntityManager } from 'typeorm';
import { Db, exec, placeholders, rows } from '../db/db';
import { isDuplicateKey } from '../db/errors';
import { audit } from '../audit/audit.service';
import { DomainError, notFound, unprocessable } from '../shared/errors';
import { Clock } from '../shared/clock';
import { Sku, SkuKind } from './sku.entity';
import { MovementKind, StockMovement } from './movement.entity';
import { OrderLine } from '../orders/order-line.entity';
import { assignBarcode } from './barcodes';

export interface StockLevel {
  sku: string;
  onHand: number;
  reserved: number;
  available: number;
}

export interface ReservationRequest {
  lineId: string;
  sku: string;
  qty: number;
}

export interface Shortfall {
  sku: string;
  requested: number;
  available: number;
}

type MovementRow = Omit<StockMovement, 'id'>;

/**
 * Stock levels and the ledger. Every level change is a conditional UPDATE on the SKU row plus a
 * movement row in the same transaction; nothing here reads a counter into JavaScript to write it back.
 */
export class InventoryService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async upsertSku(
    input: { sku: string; name: string; priceFen: number; kind?: SkuKind; barcode?: string | null },
    actor: string,
  ): Promise<Sku> {
    try {
      return await this.db.tx(async (m) => this.upsertSkuIn(m, input, actor));
    } catch (err) {
      // Two SKUs given one barcode at the same moment: the unique index let one through.
      if (isDuplicateKey(err) && input.barcode && /barcode/i.test(String((err as Error).message))) {
        throw new DomainError(
          409,
          'barcode_taken',
          `barcode ${input.barcode} was given to another SKU at the same moment`,
          { barcode: input.barcode },
        );
      }
      // Two first PUTs of one code raced: both saw no row, one insert won (MySQL reports the loser as a duplicate key).
      if (isDuplicateKey(err))
        throw new DomainError(
          409,
          'sku_created_concurrently',
          `SKU ${input.sku} was created by another request at the same moment; retry to update it`,
          { sku: input.sku },
        );
      throw err;
    }
  }

  /** SKUs in code order whose code or name starts with `q` (case as stored), a page at a time; `next` is the last code. */
  async listSkus(opts: {
    q?: string;
    kind?: SkuKind;
    cursor?: string;
    limit: number;
  }): Promise<{ skus: (StockLevel & { name: string; priceFen: number; kind: SkuKind })[]; next: string | null }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (opts.q) {
      // '!' escapes LIKE's wildcards the same way on both databases (a backslash is itself an escape in MySQL literals).
      const like = `${opts.q.replace(/[!%_]/g, (c) => `!${c}`)}%`;
      where.push("(sku LIKE ? ESCAPE '!' OR name LIKE ? ESCAPE '!')");
      params.push(like, like);
    }
    if (opts.kind) {
      where.push('kind = ?');
      params.push(opts.kind);
    }
    if (opts.cursor) {
      where.push('sku > ?');
      params.push(opts.cursor);
    }
    const found = await this.db.read((m) =>
      rows<{ sku: string; name: string; price_fen: unknown; kind: SkuKind; on_hand: unknown; reserved: unknown }>(
        m,
        `SELECT sku, name, price_fen, kind, on_hand, reserved FROM sku${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY sku LIMIT ${Number(opts.limit) + 1}`,
        params,
      ),
    );
    const page = found.slice(0, opts.limit).map((r) => ({
      sku: r.sku,
      name: r.name,
      priceFen: Number(r.price_fen),
      kind: r.kind,
      onHand: Number(r.on_hand),
      reserved: Number(r.reserved),
      available: Number(r.on_hand) - Number(r.reserved),
    }));
    return { skus: page, next: found.length > opts.limit && page.length ? page[page.length - 1].sku : null };
  }

  async upsertSkuIn(
    m: EntityManager,
    input: { sku: string; name: string; priceFen: number; kind?: SkuKind; barcode?: string | null },
    actor: string,
  ): Promise<Sku> {
    const now = this.clock.now().getTime();
    const before = await m.findOne(Sku, { where: { sku: input.sku } });
    const kind = input.kind ?? 'goods';
    if (before && before.kind !== kind) {
      throw new DomainError(409, 'sku_kind_conflict', `SKU ${input.sku} is a ${before.kind}, not ${kind}`);
    }
    if (before) {
      await m.update(Sku, { sku: input.sku }, { name: input.name, priceFen: input.priceFen, updatedAt: now });
    } else {
      await m.insert(Sku, {
        sku: input.sku,
        name: input.name,
        priceFen: input.priceFen,
        kind,
        onHand: 0,
        reserved: 0,
        createdAt: now,
        updatedAt: now,
      });
    }
    // Left out of the body, the barcode stays as it was; null removes it.
    if (input.barcode !== undefined) await assignBarcode(m, input.sku, input.barcode);
    const after = await m.findOneOrFail(Sku, { where: { sku: input.sku } });
    await audit(m, {
      actor,
      entity: 'sku',
      entityId: input.sku,
      action: before ? 'update' : 'create',
      at: now,
      before: before ? { name: before.name, priceFen: before.priceFen, barcode: before.barcode } : undefined,
      after: { name: after.name, priceFen: after.priceFen, barcode: after.barcode },
    });
    return after;
  }

  /** `answer` (a keyed request): `{ref, levels}` is stored with the receipt, so a retry after a crash replays it and never receives twice. */
  async receive(
    lines: { sku: string; qty: number }[],
    ref: string,
    actor: string,
    kind: SkuKind = 'goods',
    answer?: AnswerSlot,
  ): Promise<StockLevel[]> {
    const levels = await this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const sorted = [...lines].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
      const missing: string[] = [];
      for (const l of sorted) {
        const n = await exec(m, 'UPDATE sku SET on_hand = on_hand + ?, updated_at = ? WHERE sku = ? AND kind = ?', [
          l.qty,
          now,
          l.sku,
          kind,
        ]);
        if (n !== 1) missing.push(l.sku);
      }
      if (missing.length) throw unprocessable('unknown_sku', `unknown SKU: ${missing.join(', ')}`, { skus: missing });
      await this.writeMovements(
        m,
        sorted.map((l) => ({
          sku: l.sku,
          kind: 'receipt' as const,
          onHandDelta: l.qty,
          reservedDelta: 0,
          orderId: null,
          orderLineId: null,
          ref,
          actor,
          at: now,
        })),
      );
      await audit(m, { actor, entity: 'stock_receipt', entityId: ref, action: 'receive', after: sorted, at: now });
      const levels = await this.levelsIn(
        m,
        sorted.map((l) => l.sku),
      );
      if (answer) await storeAnswers(m, [{ slot: answer, body: { ref, levels } }]);
      return levels;
    });
    answerCommitted(answer);
    return levels;
  }

  /**
   * Creates new SKUs that arrive with stock (an event's seats: one unit each), in bulk: the SKU rows
   * and their receipt movements in the caller's transaction. 409 if any code already exists.
   */
  async createStockedIn(
    m: EntityManager,
    items: { sku: string; name: string; priceFen: number; kind: SkuKind; qty: number }[],
    ref: string,
    actor: string,
  ): Promise<void> {
    const now = this.clock.now().getTime();
    for (let i = 0; i < items.length; i += 500) {
      const codes = items.slice(i, i + 500).map((x) => x.sku);
      const taken = await rows<{ sku: string }>(
        m,
        `SELECT sku FROM sku WHERE sku IN (${placeholders(codes.length)})`,
        codes,
      );
      if (taken.length)
        throw new DomainError(409, 'sku_exists', `SKU ${taken[0].sku} already exists`, {
          skus: taken.map((t) => t.sku),
        });
    }
    for (let i = 0; i < items.length; i += 400) {
      const chunk = items.slice(i, i + 400);
      await exec(
        m,
        `INSERT INTO sku (sku, name, price_fen, kind, on_hand, reserved, created_at, updated_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, 0, ?, ?)').join(', ')}`,
        chunk.flatMap((x) => [x.sku, x.name, x.priceFen, x.kind, x.qty, now, now]),
      );
      await this.writeMovements(
        m,
        chunk.map((x) => ({
          sku: x.sku,
          kind: 'receipt' as const,
          onHandDelta: x.qty,
          reservedDelta: 0,
          orderId: null,
          orderLineId: null,
          ref,
          actor,
          at: now,
        })),
      );
    }
  }

  async level(sku: string): Promise<StockLevel> {
    const [lvl] = await this.db.read((m) => this.levelsIn(m, [sku]));
    if (!lvl) throw notFound('sku', sku);
    return lvl;
  }

  async levelsIn(m: EntityManager, skus: string[]): Promise<StockLevel[]> {
    if (skus.length === 0) return [];
    const r = await rows<{ sku: string; on_hand: string | number; reserved: string | number }>(
      m,
      `SELECT sku, on_hand, reserved FROM sku WHERE sku IN (${placeholders(skus.length)})`,
      skus,
    );
    return r.map((x) => ({
      sku: x.sku,
      onHand: Number(x.on_hand),
      reserved: Number(x.reserved),
      available: Number(x.on_hand) - Number(x.reserved),
    }));
  }

  /**
   * Reserves every line or none: one conditional UPDATE per SKU in sorted order (so concurrent
   * multi-SKU orders lock rows in the same order), collecting shortfalls; the caller's transaction
   * is rolled back by the thrown error when any line is short. Lines must have distinct SKUs.
   */
  async reserve(
    m: EntityManager,
    orderId: string,
    lines: ReservationRequest[],
    actor: string,
    kind: SkuKind = 'goods',
  ): Promise<void> {
    const now = this.clock.now().getTime();
    const sorted = [...lines].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    // The ledger rows first and the stock rows last: a hot SKU's row lock is then held only from its
    // UPDATE to the commit. A shortfall rolls the whole transaction back, ledger rows included.
    await this.writeMovements(
      m,
      sorted.map((l) => ({
        sku: l.sku,
        kind: 'reservation' as const,
        onHandDelta: 0,
        reservedDelta: l.qty,
        orderId,
        orderLineId: l.lineId,
        ref: null,
        actor,
        at: now,
      })),
    );
    const short: ReservationRequest[] = [];
    for (const l of sorted) {
      const n = await exec(
        m,
        'UPDATE sku SET reserved = reserved + ?, updated_at = ? WHERE sku = ? AND kind = ? AND on_hand - reserved >= ?',
        [l.qty, now, l.sku, kind, l.qty],
      );
      if (n !== 1) short.push(l);
    }
    if (short.length) {
      const levels = await this.levelsIn(
        m,
        short.map((s) => s.sku),
      );
      const byS = new Map(levels.map((x) => [x.sku, x.available]));
      const shortfalls: Shortfall[] = short.map((s) => ({
        sku: s.sku,
        requested: s.qty,
        available: Math.max(0, byS.get(s.sku) ?? 0),
      }));
      throw new InsufficientStockError(shortfalls);
    }
  }

  /** Ends every active reservation of the order as a sale: onHand and reserved both fall, once. */
  async commitSale(m: EntityManager, orderId: string, actor: string): Promise<number> {
    return this.endReservations(m, orderId, 'sold', actor);
  }

  /** Ends every active reservation of the order as a release: the stock is available again, once. */
  async release(m: EntityManager, orderId: string, actor: string): Promise<number> {
    return this.endReservations(m, orderId, 'released', actor);
  }

  private async endReservations(
    m: EntityManager,
    orderId: string,
    end: 'sold' | 'released',
    actor: string,
  ): Promise<number> {
    const now = this.clock.now().getTime();
    const lines = await m.find(OrderLine, { where: { orderId, reservation: 'active' } });
    lines.sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    const movements: MovementRow[] = [];
    for (const line of lines) {
      const ended = await exec(
        m,
        "UPDATE order_line SET reservation = ?, ended_at = ? WHERE id = ? AND reservation = 'active'",
        [end, now, line.id],
      );
      if (ended !== 1) continue; // another unit of work ended it first: a reservation ends exactly once
      movements.push({
        sku: line.sku,
        kind: end === 'sold' ? 'sale' : 'release',
        onHandDelta: end === 'sold' ? -line.qty : 0,
        reservedDelta: -line.qty,
        orderId,
        orderLineId: line.id,
        ref: null,
        actor,
        at: now,
      });
    }
    await this.writeMovements(m, movements);
    // The stock rows last (in SKU order), so a hot SKU stays locked only until the commit.
    for (const mv of movements) {
      const n = await exec(
        m,
        'UPDATE sku SET on_hand = on_hand + ?, reserved = reserved - ?, updated_at = ? WHERE sku = ? AND reserved >= ?',
        [mv.onHandDelta, -mv.reservedDelta, now, mv.sku, -mv.reservedDelta],
      );
      if (n !== 1)
        throw new Error(`ledger breach: SKU ${mv.sku} has less reserved than order line ${mv.orderLineId} holds`);
    }
    return movements.length;
  }

  /**
   * Adds `delta` to on hand (a stock count's correction). A negative adjustment may not take on hand
   * below what is reserved: that stock is promised to an order.
   */
  async adjust(m: EntityManager, sku: string, delta: number, ref: string, actor: string): Promise<void> {
    if (delta === 0) return;
    const now = this.clock.now().getTime();
    const n = await exec(
      m,
      'UPDATE sku SET on_hand = on_hand + ?, updated_at = ? WHERE sku = ? AND on_hand + ? >= reserved',
      [delta, now, sku, delta],
    );
    if (n !== 1)
      throw new DomainError(
        409,
        'adjustment_below_reserved',
        `adjusting ${sku} by ${delta} would leave less on hand than is reserved`,
        { sku, delta },
      );
    await this.writeMovements(m, [
      {
        sku,
        kind: 'adjustment',
        onHandDelta: delta,
        reservedDelta: 0,
        orderId: null,
        orderLineId: null,
        ref,
        actor,
        at: now,
      },
    ]);
  }

  /**
   * Takes returned units back: restocked ones raise on hand as a `return` movement, the others are
   * recorded as `damaged` (on hand unchanged). One movement per returned order line, ref = the return.
   */
  async takeBack(
    m: EntityManager,
    items: { sku: string; qty: number; orderId: string; orderLineId: string; restock: boolean }[],
    ref: string,
    actor: string,
  ): Promise<void> {
    const now = this.clock.now().getTime();
    const sorted = [...items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    await this.writeMovements(
      m,
      sorted.map((i) => ({
        sku: i.sku,
        kind: i.restock ? ('return' as const) : ('damaged' as const),
        onHandDelta: i.restock ? i.qty : 0,
        reservedDelta: 0,
        orderId: i.orderId,
        orderLineId: i.orderLineId,
        ref,
        actor,
        at: now,
      })),
    );
    for (const i of sorted) {
      if (!i.restock) continue;
      const n = await exec(m, 'UPDATE sku SET on_hand = on_hand + ?, updated_at = ? WHERE sku = ?', [
        i.qty,
        now,
        i.sku,
      ]);
      if (n !== 1) throw new Error(`ledger breach: returned SKU ${i.sku} does not exist`);
    }
  }

  async writeMovements(m: EntityManager, movements: MovementRow[]): Promise<void> {
    if (movements.length === 0) return;
    await m.insert(StockMovement, movements);
  }
}

export class InsufficientStockError extends DomainError {
  constructor(readonly shortfalls: Shortfall[]) {
    super(
      409,
      'insufficient_stock',
      `not enough stock for ${shortfalls.map((s) => s.sku).join(', ')}; nothing was reserved`,
      { shortfalls },
    );
  }
}

export type { MovementKind };
