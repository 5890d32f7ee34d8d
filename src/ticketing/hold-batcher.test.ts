import { Db, rows } from '../db/db';
import { DomainError } from '../shared/errors';
import { Outcome } from '../db/batch';
import { testDbKinds } from '../../test/support/dbs';
import { startTestApp, TestApp } from '../../test/support/app';
import { OrdersService } from '../orders/orders.service';
import { HoldInput, HoldView, holdBatcher } from './hold-batcher';
import { seatSku } from './ticketing.service';

const settings = { enabled: true, maxSize: 100, maxWaitMs: 5, maxInFlight: 1 };

describe.each(testDbKinds())('seat-hold batches on $name', ({ name }) => {
  let t: TestApp;
  let db: Db;
  let seq = 0;

  beforeAll(async () => {
    t = await startTestApp(name);
    db = t.app.db;
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  async function event(seats: number): Promise<string> {
    const id = `hb${name}${++seq}`;
    const office = await t.as('backoffice');
    const r = await office('POST', '/v1/events', {
      id,
      name: `Batch ${seq}`,
      seats: Array.from({ length: seats }, (_, i) => ({ id: `S${i + 1}`, priceFen: 10_000 + i })),
    });
    expect(r.status).toBe(201);
    return id;
  }
  const reserved = (ev: string) =>
    db.read((m) =>
      rows<{ sku: string; reserved: unknown }>(m, 'SELECT sku, reserved FROM sku WHERE sku LIKE ? ORDER BY sku', [
        `EVT:${ev}:%`,
      ]),
    );
  const hold = (ev: string, seatIds: string[]): HoldInput => ({
    eventId: ev,
    seatIds,
    ttlSeconds: 60,
    lane: 'box-office',
    actor: 'test',
  });
  const noOne = async (): Promise<HoldView> => {
    throw new Error('no batch may fall back here');
  };

  it('decides a batch in arrival order, all or nothing per hold, and answers from what it wrote', async () => {
    const ev = await event(4);
    const { batcher, stats } = holdBatcher({ db, settings, now: () => 1_000_000, seatSku, applyOne: noOne });
    const rs = await Promise.all(
      [['S1', 'S2'], ['S2', 'S3'], ['S3', 'S4'], ['S4']].map((s) =>
        batcher.submit(hold(ev, s)).then(
          (v) => ({ ok: true, v }) as const,
          (e: unknown) => ({ ok: false, e }) as const,
        ),
      ),
    );
    expect(stats).toMatchObject({ batches: 1, granted: 2 });
    expect(rs.map((r) => r.ok)).toEqual([true, false, true, false]);
    const refused = rs[1] as { e: DomainError };
    expect([refused.e.status, refused.e.code, refused.e.details]).toEqual([409, 'seat_unavailable', { seats: ['S2'] }]);
    const first = (rs[0] as { v: HoldView }).v;
    expect(first).toMatchObject({ kind: 'seats', status: 'reserved', totalFen: 20_001, seats: ['S1', 'S2'] });
    // The answer is what the database holds.
    const order = await db.read((m) =>
      rows<{ total_fen: unknown; expires_at: unknown }>(m, 'SELECT total_fen, expires_at FROM orders WHERE id = ?', [
        first.id,
      ]),
    );
    expect(Number(order[0].total_fen)).toBe(20_001);
    expect(Number(order[0].expires_at)).toBe(1_000_000 + 60_000);
    expect((await reserved(ev)).map((r) => Number(r.reserved))).toEqual([1, 1, 1, 1]);
  });

  it('a batch in which every hold is refused writes nothing', async () => {
    const ev = await event(2);
    const { batcher, stats } = holdBatcher({ db, settings, now: () => Date.now(), seatSku, applyOne: noOne });
    await batcher.submit(hold(ev, ['S1']));
    const before = await db.read((m) => rows(m, 'SELECT COUNT(*) AS n FROM audit_log'));
    const rs = await Promise.allSettled([batcher.submit(hold(ev, ['S1'])), batcher.submit(hold(ev, ['S1', 'S2']))]);
    expect(rs.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(stats.readOnly).toBe(1);
    expect(await db.read((m) => rows(m, 'SELECT COUNT(*) AS n FROM audit_log'))).toEqual(before);
    expect((await reserved(ev)).map((r) => Number(r.reserved))).toEqual([1, 0]);
  });

  it('a seat another transaction is taking: the batch reads it after that commit and refuses only its hold, in one transaction', async () => {
    const ev = await event(4);
    const orders: OrdersService = t.app.orders;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let taking!: () => void;
    const taken = new Promise<void>((r) => (taking = r));
    // A rival's order has reserved S2 and not yet committed when the batch comes to read its seats.
    const rival = db.tx(async (m) => {
      await orders.createIn(
        m,
        { lane: 'box-office', kind: 'seats', eventId: ev, lines: [{ sku: seatSku(ev, 'S2'), qty: 1 }] },
        'rival',
      );
      taking();
      await gate;
    });
    await taken;
    const { batcher, stats } = holdBatcher({ db, settings, now: () => Date.now(), seatSku, applyOne: noOne });
    const answers = Promise.all(
      [['S1', 'S2'], ['S3'], ['S4']].map((s) =>
        batcher.submit(hold(ev, s)).then(
          (value): Outcome<HoldView> => ({ ok: true, value }),
          (error: unknown): Outcome<HoldView> => ({ ok: false, error }),
        ),
      ),
    );
    await new Promise((r) => setTimeout(r, 150)); // the batch is waiting for the rival's seat
    release();
    await rival;
    const rs = await answers;
    // One transaction: one locked read and one write, START and COMMIT riding with them (two more
    // without multi-statements). A plain read would have granted S2 and the write's guard sent the
    // batch round again.
    expect(stats.statements).toBe(db.multiStatements ? 2 : 4);
    expect(rs.map((r) => r.ok)).toEqual([false, true, true]);
    expect((rs[0] as { error: DomainError }).error.details).toEqual({ seats: ['S2'] });
    // S1 was not held by the refused hold: all or nothing; S2 once, by the rival.
    expect((await reserved(ev)).map((r) => Number(r.reserved))).toEqual([0, 1, 1, 1]);
    const lines = await db.read((m) =>
      rows<{ sku: string }>(m, "SELECT sku FROM order_line WHERE sku LIKE ? AND reservation = 'active'", [
        `EVT:${ev}:%`,
      ]),
    );
    expect(lines.map((l) => l.sku).sort()).toEqual([seatSku(ev, 'S2'), seatSku(ev, 'S3'), seatSku(ev, 'S4')]);
  });

  it('after a batch that granted nothing, holds for taken seats are refused by a plain read, without waiting for a lock', async () => {
    const ev = await event(3);
    const { batcher, stats } = holdBatcher({ db, settings, now: () => Date.now(), seatSku, applyOne: noOne });
    await batcher.submit(hold(ev, ['S1', 'S2'])); // granted: the next batch takes the locks
    await expect(batcher.submit(hold(ev, ['S1']))).rejects.toMatchObject({ code: 'seat_unavailable' });
    expect(stats).toMatchObject({ batches: 2, readOnly: 1, unlocked: 0 });
    // A rival transaction has S1's row locked (a cashier's payment or an expiry working on that order). On
    // SQLite a transaction holds the one writer, and the batch's grant of S3 would wait for it: no rival there.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let locking!: () => void;
    const locked = new Promise<void>((r) => (locking = r));
    const rival =
      db.kind === 'mysql'
        ? db.tx(async (m) => {
            await rows(m, `SELECT sku FROM sku WHERE sku = ?${db.forUpdate}`, [seatSku(ev, 'S1')]);
            locking();
            await gate;
          })
        : Promise.resolve(locking());
    await locked;
    const before = stats.statements;
    try {
      // S1 is taken in what is committed: refused while the rival still holds its row; S3 is free and is
      // granted through the locked path, in the same batch.
      const rs = await Promise.allSettled([batcher.submit(hold(ev, ['S1'])), batcher.submit(hold(ev, ['S3']))]);
      expect(rs.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
      expect((rs[0] as PromiseRejectedResult).reason).toMatchObject({
        code: 'seat_unavailable',
        details: { seats: ['S1'] },
      });
      // The plain read, then the transaction for S3 alone: one locked read and one write (and START and COMMIT).
      expect(stats.statements - before).toBe(1 + (db.multiStatements ? 2 : 4));
      expect(stats.unlocked).toBe(0);
      // Every seat is taken now, and the last batch granted one: a locked batch that grants nothing, then plain reads.
      await expect(batcher.submit(hold(ev, ['S2']))).rejects.toMatchObject({ code: 'seat_unavailable' });
      await expect(batcher.submit(hold(ev, ['S1', 'S3']))).rejects.toMatchObject({ code: 'seat_unavailable' });
      expect(stats).toMatchObject({ batches: 5, unlocked: 1 });
    } finally {
      release();
      await rival;
    }
    expect((await reserved(ev)).map((r) => Number(r.reserved))).toEqual([1, 1, 1]);
  });

  it("an event's first batch goes straight to the locks, whatever other events are sold out", async () => {
    const gone = await event(1);
    const opening = await event(2);
    const { batcher, stats } = holdBatcher({ db, settings, now: () => Date.now(), seatSku, applyOne: noOne });
    await batcher.submit(hold(gone, ['S1']));
    await expect(batcher.submit(hold(gone, ['S1']))).rejects.toMatchObject({ code: 'seat_unavailable' });
    await expect(batcher.submit(hold(gone, ['S1']))).rejects.toMatchObject({ code: 'seat_unavailable' });
    expect(stats).toMatchObject({ unlocked: 1 }); // the sold-out event is read plainly now
    const before = stats.statements;
    await batcher.submit(hold(opening, ['S1']));
    // No plain read first: the locked read and the write (and START and COMMIT without multi-statements).
    expect(stats.statements - before).toBe(db.multiStatements ? 2 : 4);
  });
});
