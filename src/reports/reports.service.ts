import { Db, rows } from '../db/db';
import { Clock } from '../shared/clock';
import { notFound } from '../shared/errors';

const iso = (v: unknown) => (v == null ? null : new Date(Number(v)).toISOString());
const escapeLike = (q: string) => `%${q.replace(/[!%_]/g, (c) => `!${c}`)}%`;
const CHINA_OFFSET_MS = 8 * 3600_000;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
export interface CatalogRow {
  sku: string;
  name: string;
  barcode: string | null;
  priceFen: number;
  kind: string;
  onHand: number;
  reserved: number;
  available: number;
}
export interface MovementRow {
  id: number;
  kind: string;
  onHandDelta: number;
  reservedDelta: number;
  orderId: string | null;
  ref: string | null;
  actor: string;
  at: string;
}
export interface Holder {
  orderId: string;
  lane: string;
  orderStatus: string;
  qty: number;
  expiresAt: string | null;
  payment: { id: string; status: string; method: string } | null;
}
export interface AuditRow {
  id: number;
  actor: string;
  entity: string;
  entityId: string;
  action: string;
  before: unknown;
  after: unknown;
  at: string;
}
export interface AgeBucket {
  bucket: '<1h' | '<24h' | '<3d' | 'older';
  count: number;
  amountFen: number;
}
export interface TenderDay {
  day: string;
  method: string;
  count: number;
  amountFen: number;
}

/**
 * Read-only views for the back office: every list pages on the server with a cursor (the last id
 * seen), so a long ledger or audit log never travels to the browser in one piece.
 */
export class ReportsService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async catalog(q: string | undefined, after: string | undefined, limit: number): Promise<Page<CatalogRow>> {
    const where: string[] = ["kind = 'goods'"];
    const params: unknown[] = [];
    if (q) {
      where.push("(sku LIKE ? ESCAPE '!' OR name LIKE ? ESCAPE '!' OR barcode = ?)");
      params.push(escapeLike(q), escapeLike(q), q);
    }
    if (after) {
      where.push('sku > ?');
      params.push(after);
    }
    const found = await this.db.read((m) =>
      rows<Record<string, unknown>>(
        m,
        `SELECT sku, name, barcode, price_fen, kind, on_hand, reserved FROM sku WHERE ${where.join(' AND ')} ORDER BY sku LIMIT ?`,
        [...params, limit + 1],
      ),
    );
    const items = found.slice(0, limit).map((r) => ({
      sku: String(r.sku),
      name: String(r.name),
      barcode: (r.barcode as string | null) ?? null,
      priceFen: Number(r.price_fen),
      kind: String(r.kind),
      onHand: Number(r.on_hand),
      reserved: Number(r.reserved),
      available: Number(r.on_hand) - Number(r.reserved),
    }));
    return { items, nextCursor: found.length > limit ? items[items.length - 1].sku : null };
  }

  /** Newest first. */
  async movements(sku: string, before: number | undefined, limit: number): Promise<Page<MovementRow>> {
    await this.skuExists(sku);
    const found = await this.db.read((m) =>
      rows<Record<string, unknown>>(
        m,
        `SELECT id, kind, on_hand_delta, reserved_delta, order_id, ref, actor, at FROM stock_movement WHERE sku = ?${before ? ' AND id < ?' : ''} ORDER BY id DESC LIMIT ?`,
        before ? [sku, before, limit + 1] : [sku, limit + 1],
      ),
    );
    const items = found.slice(0, limit).map((r) => ({
      id: Number(r.id),
      kind: String(r.kind),
      onHandDelta: Number(r.on_hand_delta),
      reservedDelta: Number(r.reserved_delta),
      orderId: (r.order_id as string | null) ?? null,
      ref: (r.ref as string | null) ?? null,
      actor: String(r.actor),
      at: iso(r.at)!,
    }));
    return { items, nextCursor: found.length > limit ? String(items[items.length - 1].id) : null };
  }

  /**
   * On hand after each of the last `points` movements that changed it, walked back from today's
   * level (on hand = Σ movements, so subtracting each delta in turn gives the level before it).
   */
  async onHandHistory(sku: string, points: number): Promise<{ at: string; onHand: number }[]> {
    return this.db.read(async (m) => {
      const s = await rows<{ on_hand: unknown }>(m, 'SELECT on_hand FROM sku WHERE sku = ?', [sku]);
      if (!s.length) throw notFound('sku', sku);
      const moves = await rows<{ on_hand_delta: unknown; at: unknown }>(
        m,
        'SELECT on_hand_delta, at FROM stock_movement WHERE sku = ? AND on_hand_delta <> 0 ORDER BY id DESC LIMIT ?',
        [sku, points],
      );
      let level = Number(s[0].on_hand);
      const out: { at: string; onHand: number }[] = [{ at: this.clock.now().toISOString(), onHand: level }];
      for (const mv of moves) {
        out.push({ at: iso(mv.at)!, onHand: level });
        level -= Number(mv.on_hand_delta);
      }
      if (moves.length < points && moves.length) out.push({ at: iso(moves[moves.length - 1].at)!, onHand: level });
      return out.reverse();
    });
  }

  /** The orders whose active reservations hold this SKU, with the state of their latest payment. */
  async holders(sku: string, limit: number): Promise<Holder[]> {
    await this.skuExists(sku);
    const found = await this.db.read((m) =>
      rows<Record<string, unknown>>(
        m,
        `SELECT o.id, o.lane, o.status, o.expires_at, SUM(l.qty) AS qty FROM order_line l JOIN orders o ON o.id = l.order_id
       WHERE l.sku = ? AND l.reservation = 'active' GROUP BY o.id, o.lane, o.status, o.expires_at ORDER BY o.expires_at LIMIT ?`,
        [sku, limit],
      ),
    );
    const out: Holder[] = [];
    for (const r of found) {
      const p = await this.db.read((m) =>
        rows<Record<string, unknown>>(
          m,
          'SELECT id, status, method FROM payment WHERE order_id = ? ORDER BY created_at DESC LIMIT 1',
          [r.id],
        ),
      );
      out.push({
        orderId: String(r.id),
        lane: String(r.lane),
        orderStatus: String(r.status),
        qty: Number(r.qty),
        expiresAt: iso(r.expires_at),
        payment: p.length ? { id: String(p[0].id), status: String(p[0].status), method: String(p[0].method) } : null,
      });
    }
    return out;
  }

  /** Newest first; filters are exact (entity id, actor) because that is what a clerk pastes in. */
  async audit(
    filter: { entityId?: string; actor?: string; entity?: string },
    before: number | undefined,
    limit: number,
  ): Promise<Page<AuditRow>> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.entityId) {
      where.push('entity_id = ?');
      params.push(filter.entityId);
    }
    if (filter.actor) {
      where.push('actor = ?');
      params.push(filter.actor);
    }
    if (filter.entity) {
      where.push('entity = ?');
      params.push(filter.entity);
    }
    if (before) {
      where.push('id < ?');
      params.push(before);
    }
    const found = await this.db.read((m) =>
      rows<Record<string, unknown>>(
        m,
        `SELECT id, actor, entity, entity_id, action, \`before\` AS b, \`after\` AS a, at FROM audit_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
        [...params, limit + 1],
      ),
    );
    const parse = (v: unknown) => {
      if (v == null) return null;
      try {
        return JSON.parse(String(v));
      } catch {
        return String(v);
      }
    };
    const items = found.slice(0, limit).map((r) => ({
      id: Number(r.id),
      actor: String(r.actor),
      entity: String(r.entity),
      entityId: String(r.entity_id),
      action: String(r.action),
      before: parse(r.b),
      after: parse(r.a),
      at: iso(r.at)!,
    }));
    return { items, nextCursor: found.length > limit ? String(items[items.length - 1].id) : null };
  }

  /** How long card money has been held, by status: the ageing chart on the held-money page. */
  async heldAgeing(): Promise<{ status: string; buckets: AgeBucket[] }[]> {
    const now = this.clock.now().getTime();
    const found = await this.db.read((m) =>
      rows<{ status: string; since: unknown; amount_fen: unknown }>(
        m,
        "SELECT status, COALESCE(unknown_since, created_at) AS since, amount_fen FROM payment WHERE status IN ('unknown', 'suspense', 'disputed')",
      ),
    );
    const names: AgeBucket['bucket'][] = ['<1h', '<24h', '<3d', 'older'];
    const byStatus = new Map<string, AgeBucket[]>();
    for (const s of ['unknown', 'suspense', 'disputed'])
      byStatus.set(
        s,
        names.map((bucket) => ({ bucket, count: 0, amountFen: 0 })),
      );
    for (const r of found) {
      const age = now - Number(r.since);
      const i = age < 3600_000 ? 0 : age < 86_400_000 ? 1 : age < 3 * 86_400_000 ? 2 : 3;
      const b = byStatus.get(r.status)![i];
      b.count += 1;
      b.amountFen += Number(r.amount_fen);
    }
    return [...byStatus].map(([status, buckets]) => ({ status, buckets }));
  }

  /** Approved tenders by China calendar day and method, for the last `days` days. */
  async salesByTender(days: number): Promise<TenderDay[]> {
    const now = this.clock.now().getTime();
    const dayStart = Math.floor((now + CHINA_OFFSET_MS) / 86_400_000) * 86_400_000 - CHINA_OFFSET_MS;
    const from = dayStart - (days - 1) * 86_400_000;
    const found = await this.db.read((m) =>
      rows<{ method: string; amount_fen: unknown; at: unknown }>(
        m,
        "SELECT method, amount_fen, COALESCE(finished_at, created_at) AS at FROM payment WHERE status = 'approved' AND COALESCE(finished_at, created_at) >= ?",
        [from],
      ),
    );
    const sums = new Map<string, TenderDay>();
    for (const r of found) {
      const day = new Date(Number(r.at) + CHINA_OFFSET_MS).toISOString().slice(0, 10);
      const k = `${day}|${r.method}`;
      const t = sums.get(k) ?? { day, method: r.method, count: 0, amountFen: 0 };
      t.count += 1;
      t.amountFen += Number(r.amount_fen);
      sums.set(k, t);
    }
    return [...sums.values()].sort((a, b) => a.day.localeCompare(b.day) || a.method.localeCompare(b.method));
  }

  async stockCounts(
    before: number | undefined,
    limit: number,
  ): Promise<
    Page<{
      id: string;
      status: string;
      scope: string;
      skus: number;
      createdBy: string;
      createdAt: string;
      endedAt: string | null;
    }>
  > {
    const found = await this.db.read((m) =>
      rows<Record<string, unknown>>(
        m,
        `SELECT id, status, scope, skus, created_by, created_at, ended_at FROM stock_count${before ? ' WHERE created_at < ?' : ''} ORDER BY created_at DESC LIMIT ?`,
        before ? [before, limit + 1] : [limit + 1],
      ),
    );
    const items = found.slice(0, limit).map((r) => ({
      id: String(r.id),
      status: String(r.status),
      scope: String(r.scope),
      skus: Number(r.skus),
      createdBy: String(r.created_by),
      createdAt: iso(r.created_at)!,
      endedAt: iso(r.ended_at),
    }));
    return { items, nextCursor: found.length > limit ? String(Number(found[limit - 1].created_at)) : null };
  }

  async events(): Promise<{ id: string; name: string; seats: number; createdAt: string }[]> {
    const found = await this.db.read((m) =>
      rows<Record<string, unknown>>(
        m,
        'SELECT e.id, e.name, e.created_at, COUNT(s.seat_id) AS seats FROM event e LEFT JOIN event_seat s ON s.event_id = e.id GROUP BY e.id, e.name, e.created_at ORDER BY e.created_at DESC LIMIT 200',
      ),
    );
    return found.map((r) => ({
      id: String(r.id),
      name: String(r.name),
      seats: Number(r.seats),
      createdAt: iso(r.created_at)!,
    }));
  }

  /** The seats of an event that are held now: by which order, until when, and how its payment stands. */
  async seatHolds(
    eventId: string,
  ): Promise<{ seatId: string; orderId: string; expiresAt: string | null; payment: string | null }[]> {
    const found = await this.db.read((m) =>
      rows<Record<string, unknown>>(
        m,
        `SELECT es.seat_id, o.id AS order_id, o.expires_at,
        (SELECT p.status FROM payment p WHERE p.order_id = o.id ORDER BY p.created_at DESC LIMIT 1) AS payment
       FROM event_seat es JOIN order_line l ON l.sku = es.sku AND l.reservation = 'active' JOIN orders o ON o.id = l.order_id
       WHERE es.event_id = ? ORDER BY es.seat_id LIMIT 5000`,
        [eventId],
      ),
    );
    return found.map((r) => ({
      seatId: String(r.seat_id),
      orderId: String(r.order_id),
      expiresAt: iso(r.expires_at),
      payment: (r.payment as string | null) ?? null,
    }));
  }

  private async skuExists(sku: string): Promise<void> {
    const s = await this.db.read((m) => rows(m, 'SELECT sku FROM sku WHERE sku = ?', [sku]));
    if (!s.length) throw notFound('sku', sku);
  }
}
