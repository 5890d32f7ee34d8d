/**
 * Seats are unique items: each is a SKU of kind `seat` with one unit on hand, so a hold is an
 * ordinary all-or-nothing reservation and a sale the ordinary commit — the same ledger, the same
 * invariants, the same rule that nothing held by an unknown payment is ever released. Tickets are
 * issued inside the transaction that pays the order, once per seat (a unique key makes sure).
 */
import { randomBytes } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { Db, exec, placeholders, rows } from '../db/db';
import { isDuplicateKey } from '../db/errors';
import { Clock } from '../shared/clock';
import { DomainError, conflict, notFound, unprocessable } from '../shared/errors';
import { InsufficientStockError, InventoryService } from '../inventory/inventory.service';
import { OrdersService, OrderView } from '../orders/orders.service';
import { Order } from '../orders/order.entity';
import { audit } from '../audit/audit.service';
import { Batcher } from '../db/batch';
import { BatchObserver, batchSettingsFromEnv, BatchSettings } from '../orders/order-batcher';
import { HoldBatchStats, HoldInput, HoldView, holdBatcher } from './hold-batcher';

export interface SeatInput {
  id: string;
  section?: string;
  row?: string;
  number?: number;
  priceFen: number;
}
export type SeatStatus = 'free' | 'held' | 'sold';
export interface SeatView {
  id: string;
  section: string;
  row: string | null;
  number: number | null;
  priceFen: number;
  status: SeatStatus;
}
export interface TicketView {
  code: string;
  eventId: string;
  seatId: string;
  issuedAt: string;
}

export const seatSku = (eventId: string, seatId: string) => `EVT:${eventId}:${seatId}`;

interface SeatRow {
  seat_id: string;
  section: string;
  row_label: string | null;
  seat_no: unknown;
  sku: string;
  price_fen: unknown;
  on_hand: unknown;
  reserved: unknown;
}

export class TicketingService {
  /** Seat holds gathered into batches (hold-batcher.ts); null with POS_BATCH=off. */
  private readonly holds: Batcher<HoldInput, HoldView> | null;
  readonly holdStats: HoldBatchStats | null;
  /**
   * Each event's seat ids. An event and its seats are written in one transaction and never changed or
   * deleted, so once read they stay right in every process; only whether a seat is free is asked of
   * the database, in the batch.
   */
  private readonly eventSeats = new Map<string, Set<string>>();
  private readonly eventSeatLoads = new Map<string, Promise<Set<string>>>();
  private batchObserver: BatchObserver | undefined;

  constructor(
    private readonly db: Db,
    private readonly inventory: InventoryService,
    private readonly orders: OrdersService,
    private readonly clock: Clock,
    batch: BatchSettings = batchSettingsFromEnv(db.kind),
  ) {
    if (batch.enabled) {
      const { batcher, stats } = holdBatcher({
        db,
        settings: { ...batch, maxInFlight: batch.seatMaxInFlight ?? batch.maxInFlight },
        now: () => this.clock.now().getTime(),
        seatSku,
        applyOne: (h) => this.holdUnbatched(h.eventId, h.seatIds, h.ttlSeconds, h.lane, h.actor),
        observe: (info) => this.batchObserver?.(info),
      });
      this.holds = batcher;
      this.holdStats = stats;
    } else {
      this.holds = null;
      this.holdStats = null;
    }
  }

  /** Sees every seat-hold batch (size, seconds, whether it fell back to one hold at a time). */
  observeBatches(fn: BatchObserver): void {
    this.batchObserver = fn;
  }

  /** Resolves when no seat-hold batch is queued or in flight. */
  async idle(): Promise<void> {
    await this.holds?.idle();
  }

  async createEvent(
    input: { id: string; name: string; seats: SeatInput[] },
    actor: string,
  ): Promise<{ id: string; name: string; seats: number }> {
    const ids = new Set<string>();
    for (const s of input.seats) {
      if (ids.has(s.id)) throw unprocessable('duplicate_seat', `seat ${s.id} is listed twice`, { seat: s.id });
      ids.add(s.id);
    }
    const now = this.clock.now().getTime();
    return this.db.tx(async (m) => {
      const existing = await rows(m, 'SELECT id FROM event WHERE id = ?', [input.id]);
      const eventExists = () => conflict('event_exists', `event ${input.id} already exists`, { id: input.id });
      if (existing.length) throw eventExists();
      // Two creates of one id race past the read above: the primary key decides, and the loser is a 409.
      await exec(m, 'INSERT INTO event (id, name, created_at) VALUES (?, ?, ?)', [input.id, input.name, now]).catch(
        (err) => {
          throw isDuplicateKey(err) ? eventExists() : err;
        },
      );
      // Each seat is a SKU with one unit on hand, received like any stock.
      await this.inventory.createStockedIn(
        m,
        input.seats.map((s) => ({
          sku: seatSku(input.id, s.id),
          name: `${input.name} · seat ${s.id}`.slice(0, 200),
          priceFen: s.priceFen,
          kind: 'seat' as const,
          qty: 1,
        })),
        `event:${input.id}`,
        actor,
      );
      for (let i = 0; i < input.seats.length; i += 400) {
        const chunk = input.seats.slice(i, i + 400);
        await exec(
          m,
          `INSERT INTO event_seat (event_id, seat_id, section, row_label, seat_no, sku) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flatMap((s) => [
            input.id,
            s.id,
            s.section ?? '',
            s.row ?? null,
            s.number ?? null,
            seatSku(input.id, s.id),
          ]),
        );
      }
      await audit(m, {
        actor,
        entity: 'event',
        entityId: input.id,
        action: 'create',
        after: { name: input.name, seats: input.seats.length },
        at: now,
      });
      return { id: input.id, name: input.name, seats: input.seats.length };
    });
  }

  private async seatRows(m: EntityManager, eventId: string): Promise<SeatRow[]> {
    const ev = await rows(m, 'SELECT id FROM event WHERE id = ?', [eventId]);
    if (!ev.length) throw notFound('event', eventId);
    return rows<SeatRow>(
      m,
      `SELECT es.seat_id, es.section, es.row_label, es.seat_no, es.sku, s.price_fen, s.on_hand, s.reserved
      FROM event_seat es JOIN sku s ON s.sku = es.sku WHERE es.event_id = ? ORDER BY es.section, es.row_label, es.seat_no, es.seat_id`,
      [eventId],
    );
  }

  async seats(eventId: string): Promise<SeatView[]> {
    return this.db.read(async (m) => (await this.seatRows(m, eventId)).map(seatView));
  }

  /** Holds these seats, all or nothing, as an order that expires after `ttlSeconds` unless paid. */
  async hold(
    eventId: string,
    input: { seats?: string[]; count?: number; section?: string; ttlSeconds: number; lane: string },
    actor: string,
  ): Promise<OrderView & { seats: string[] }> {
    if (input.seats) return this.holdSeats(eventId, input.seats, input.ttlSeconds, input.lane, actor);
    // Best available: pick, try, and pick again if another buyer was faster.
    for (let attempt = 0; attempt < 5; attempt++) {
      const picked = await this.bestAvailable(eventId, input.count!, input.section);
      try {
        return await this.holdSeats(eventId, picked, input.ttlSeconds, input.lane, actor);
      } catch (err) {
        if (!(err instanceof DomainError && err.code === 'seat_unavailable') || attempt === 4) throw err;
      }
    }
    throw new Error('unreachable');
  }

  private async holdSeats(
    eventId: string,
    seatIds: string[],
    ttlSeconds: number,
    lane: string,
    actor: string,
  ): Promise<OrderView & { seats: string[] }> {
    const dup = seatIds.find((s, i) => seatIds.indexOf(s) !== i);
    if (dup) throw unprocessable('duplicate_seat', `seat ${dup} is listed twice`, { seat: dup });
    if (!this.holds) return this.holdUnbatched(eventId, seatIds, ttlSeconds, lane, actor);
    // Which seats exist is known without a read; whether they are free is decided in the batch.
    const known = await this.seatIdsOf(eventId);
    const unknown = seatIds.filter((s) => !known.has(s));
    if (unknown.length) throw unprocessable('unknown_seat', `no such seat: ${unknown.join(', ')}`, { seats: unknown });
    return this.holds.submit({ eventId, seatIds, ttlSeconds, lane, actor });
  }

  /** The event's seat ids, read once per process (404 for an event that does not exist, not remembered). */
  private seatIdsOf(eventId: string): Promise<Set<string>> {
    const hit = this.eventSeats.get(eventId);
    if (hit) return Promise.resolve(hit);
    let load = this.eventSeatLoads.get(eventId);
    if (!load) {
      load = this.db
        .read(async (m) => {
          const r = await rows<{ seat_id: string }>(m, 'SELECT seat_id FROM event_seat WHERE event_id = ?', [eventId]);
          if (r.length === 0 && !(await rows(m, 'SELECT id FROM event WHERE id = ?', [eventId])).length)
            throw notFound('event', eventId);
          const set = new Set(r.map((x) => x.seat_id));
          // A few events are on sale at once; the oldest read is dropped first (it is read again if asked).
          if (this.eventSeats.size >= 64) this.eventSeats.delete(this.eventSeats.keys().next().value!);
          this.eventSeats.set(eventId, set);
          return set;
        })
        .finally(() => this.eventSeatLoads.delete(eventId));
      this.eventSeatLoads.set(eventId, load);
    }
    return load;
  }

  /** One hold, one transaction through the order engine (POS_BATCH=off, and a failed batch's inputs one by one). */
  private async holdUnbatched(
    eventId: string,
    seatIds: string[],
    ttlSeconds: number,
    lane: string,
    actor: string,
  ): Promise<OrderView & { seats: string[] }> {
    // One plain read checks the seats and refuses at once what is plainly taken (events and seats are
    // never deleted); the hold itself rides in the order batch, where the stock rows are the guard.
    const known = await this.db.read(async (m) => {
      const r = await rows<{ seat_id: string; on_hand: unknown; reserved: unknown }>(
        m,
        `SELECT es.seat_id, s.on_hand, s.reserved FROM event_seat es JOIN sku s ON s.sku = es.sku WHERE es.event_id = ? AND es.seat_id IN (${placeholders(seatIds.length)})`,
        [eventId, ...seatIds],
      );
      if (r.length === 0 && !(await rows(m, 'SELECT id FROM event WHERE id = ?', [eventId])).length)
        throw notFound('event', eventId);
      return r;
    });
    const knownIds = new Set(known.map((k) => k.seat_id));
    const unknown = seatIds.filter((s) => !knownIds.has(s));
    if (unknown.length) throw unprocessable('unknown_seat', `no such seat: ${unknown.join(', ')}`, { seats: unknown });
    const taken = known.filter((k) => Number(k.on_hand) - Number(k.reserved) < 1).map((k) => k.seat_id);
    if (taken.length)
      throw conflict('seat_unavailable', `seats already held or sold: ${taken.join(', ')}`, { seats: taken });
    try {
      const order = await this.orders.create(
        {
          lane,
          kind: 'seats',
          eventId,
          holdSeconds: ttlSeconds,
          lines: seatIds.map((s) => ({ sku: seatSku(eventId, s), qty: 1 })),
        },
        actor,
      );
      return { ...order, seats: seatIds };
    } catch (err) {
      if (err instanceof InsufficientStockError) {
        const prefix = seatSku(eventId, '');
        const taken = err.shortfalls.map((s) => s.sku.slice(prefix.length));
        throw conflict('seat_unavailable', `seats already held or sold: ${taken.join(', ')}`, { seats: taken });
      }
      throw err;
    }
  }

  /** N adjacent free seats in one row if there are, else the first N free seats of the section. */
  private async bestAvailable(eventId: string, count: number, section?: string): Promise<string[]> {
    const free = (await this.db.read((m) => this.seatRows(m, eventId))).filter(
      (s) => Number(s.on_hand) - Number(s.reserved) > 0 && (section === undefined || s.section === section),
    );
    if (free.length < count)
      throw conflict('seat_unavailable', `fewer than ${count} free seats${section ? ` in section ${section}` : ''}`, {
        seats: [],
        free: free.length,
      });
    const byRow = new Map<string, SeatRow[]>();
    for (const s of free) {
      const k = `${s.section}\u0000${s.row_label ?? ''}`;
      if (!byRow.has(k)) byRow.set(k, []);
      byRow.get(k)!.push(s);
    }
    for (const seatsInRow of byRow.values()) {
      const numbered = seatsInRow
        .filter((s) => s.seat_no !== null)
        .sort((a, b) => Number(a.seat_no) - Number(b.seat_no));
      for (let i = 0; i + count <= numbered.length; i++) {
        const run = numbered.slice(i, i + count);
        if (Number(run[count - 1].seat_no) - Number(run[0].seat_no) === count - 1) return run.map((s) => s.seat_id);
      }
    }
    return free.slice(0, count).map((s) => s.seat_id);
  }

  /**
   * A live hold runs until `ttlSeconds` from now. Never shorter than it already runs: a cashier who
   * asked for less would otherwise release the seats under a customer who was promised them.
   */
  async extend(
    orderId: string,
    ttlSeconds: number,
    actor: string,
    checkLane: (lane: string) => void = () => undefined,
  ): Promise<{ id: string; expiresAt: string }> {
    const now = this.clock.now().getTime();
    return this.db.tx(async (m) => {
      const order = await m.findOne(Order, { where: { id: orderId } });
      if (!order || order.kind !== 'seats') throw notFound('hold', orderId);
      checkLane(order.lane);
      if (order.status !== 'reserved')
        throw conflict('hold_not_live', `hold ${orderId} is ${order.status}`, { status: order.status });
      const until = now + ttlSeconds * 1000;
      if (until < order.expiresAt) {
        throw conflict(
          'hold_would_shorten',
          `hold ${orderId} already runs until ${new Date(order.expiresAt).toISOString()}; extending never shortens it`,
          { expiresAt: new Date(order.expiresAt).toISOString() },
        );
      }
      await this.orders.extendHold(m, orderId, until);
      await audit(m, {
        actor,
        entity: 'order',
        entityId: orderId,
        action: 'extend',
        before: { expiresAt: order.expiresAt },
        after: { expiresAt: until },
        at: now,
      });
      return { id: orderId, expiresAt: new Date(until).toISOString() };
    });
  }

  /** Called in the paying transaction: one ticket per seat, with 128 random bits in its code. */
  async issueTickets(m: EntityManager, order: Order, now: number): Promise<void> {
    if (order.kind !== 'seats' || !order.eventId) return;
    const seats = await rows<{ seat_id: string }>(
      m,
      `SELECT es.seat_id FROM order_line l JOIN event_seat es ON es.sku = l.sku WHERE l.order_id = ? ORDER BY l.line_no`,
      [order.id],
    );
    for (const s of seats) {
      await exec(m, 'INSERT INTO ticket (code, order_id, event_id, seat_id, issued_at) VALUES (?, ?, ?, ?, ?)', [
        randomBytes(16).toString('base64url'),
        order.id,
        order.eventId,
        s.seat_id,
        now,
      ]);
    }
    await audit(m, {
      actor: 'system:ticketing',
      entity: 'order',
      entityId: order.id,
      action: 'tickets_issued',
      after: { seats: seats.map((s) => s.seat_id) },
      at: now,
    });
  }

  async tickets(orderId: string): Promise<TicketView[]> {
    return this.db.read(async (m) => {
      const order = await m.findOne(Order, { where: { id: orderId } });
      if (!order) throw notFound('order', orderId);
      if (order.kind !== 'seats') throw unprocessable('not_a_seat_order', `order ${orderId} holds no seats`);
      if (order.status !== 'paid')
        throw conflict('order_not_paid', `order ${orderId} is ${order.status}; tickets are issued when it is paid`, {
          status: order.status,
        });
      const t = await rows<{ code: string; event_id: string; seat_id: string; issued_at: unknown }>(
        m,
        'SELECT code, event_id, seat_id, issued_at FROM ticket WHERE order_id = ? ORDER BY seat_id',
        [orderId],
      );
      return t.map((r) => ({
        code: r.code,
        eventId: r.event_id,
        seatId: r.seat_id,
        issuedAt: new Date(Number(r.issued_at)).toISOString(),
      }));
    });
  }
}

function seatView(s: SeatRow): SeatView {
  const onHand = Number(s.on_hand);
  const status: SeatStatus = onHand === 0 ? 'sold' : Number(s.reserved) > 0 ? 'held' : 'free';
  return {
    id: s.seat_id,
    section: s.section,
    row: s.row_label,
    number: s.seat_no === null ? null : Number(s.seat_no),
    priceFen: Number(s.price_fen),
    status,
  };
}
