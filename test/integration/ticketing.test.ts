import { ManualClock } from '../../src/shared/clock';
import { rows } from '../../src/db/db';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';
import { MemorySimBank } from '../../src/acquirer/bank-memory';

describe.each(testDbKinds())('ticketing on $name', ({ name }) => {
  let t: TestApp;
  let clock: ManualClock;
  let box: Api;
  let office: Api;
  let lane: SilentTerminal;

  beforeAll(async () => {
    clock = new ManualClock(new Date('2026-11-25T02:00:00Z'));
    lane = new SilentTerminal('lane-1', new MemorySimBank(), clock);
    t = await startTestApp(name, { clock, poolSize: 30, terminals: new Map([['lane-1', lane]]) });
    box = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
  });
  afterEach(async () => {
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function event(seats: number, perRow = 10): Promise<string> {
    const id = `ev${name}${++seq}`;
    const r = await office('POST', '/v1/events', {
      id,
      name: `Concert ${seq}`,
      seats: Array.from({ length: seats }, (_, i) => ({
        id: `A${Math.floor(i / perRow) + 1}-${(i % perRow) + 1}`,
        section: 'A',
        row: String(Math.floor(i / perRow) + 1),
        number: (i % perRow) + 1,
        priceFen: 28_000,
      })),
    });
    expect(r.status).toBe(201);
    return id;
  }
  const seatMap = async (ev: string) =>
    Object.fromEntries(
      ((await box('GET', `/v1/events/${ev}/seats`)).body as { id: string; status: string }[]).map((s) => [
        s.id,
        s.status,
      ]),
    );

  it('holds seats all or nothing, names the taken ones, and sells them on payment with one ticket each', async () => {
    const ev = await event(4);
    const hold = await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1', 'A1-2'], ttlSeconds: 600 });
    expect(hold.status).toBe(201);
    expect(hold.body).toMatchObject({ status: 'reserved', totalFen: 56_000, seats: ['A1-1', 'A1-2'] });
    expect(Date.parse(hold.body.expiresAt) - clock.now().getTime()).toBe(600_000);
    const clash = await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-2', 'A1-3'] });
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatchObject({ code: 'seat_unavailable', details: { seats: ['A1-2'] } });
    expect(await seatMap(ev)).toEqual({ 'A1-1': 'held', 'A1-2': 'held', 'A1-3': 'free', 'A1-4': 'free' });

    expect((await box('GET', `/v1/orders/${hold.body.id}/tickets`)).status).toBe(409);
    expect(
      (await box('POST', `/v1/orders/${hold.body.id}/payments`, { method: 'cash', amountFen: 56_000, lane: 'lane-1' }))
        .status,
    ).toBe(201);
    const tickets = await box('GET', `/v1/orders/${hold.body.id}/tickets`);
    expect(tickets.status).toBe(200);
    expect(tickets.body.map((x: { seatId: string }) => x.seatId)).toEqual(['A1-1', 'A1-2']);
    for (const x of tickets.body) expect(Buffer.from(x.code, 'base64url').length).toBeGreaterThanOrEqual(12);
    expect(new Set(tickets.body.map((x: { code: string }) => x.code)).size).toBe(2);
    expect(await seatMap(ev)).toMatchObject({ 'A1-1': 'sold', 'A1-2': 'sold', 'A1-3': 'free' });
    const sold = await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1'] });
    expect(sold.status).toBe(409);
    expect(sold.body.error.code).toBe('seat_unavailable');
  });

  it('flash sale: 1 000 concurrent holds for 100 seats — no seat held twice; exactly the paid seats are sold', async () => {
    const ev = await event(100);
    const ids = Array.from({ length: 100 }, (_, i) => `A${Math.floor(i / 10) + 1}-${(i % 10) + 1}`);
    let rnd = 42;
    const rand = () => (rnd = (rnd * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const requests = Array.from({ length: 1000 }, () => {
      const n = 1 + Math.floor(rand() * 4);
      return [...new Set(Array.from({ length: n }, () => ids[Math.floor(rand() * 100)]))];
    });
    const results = await Promise.all(
      requests.map((seats) => box('POST', `/v1/events/${ev}/holds`, { seats, ttlSeconds: 60 })),
    );
    expect(
      results.every((r) => r.status === 201 || (r.status === 409 && r.body.error.code === 'seat_unavailable')),
    ).toBe(true);
    const won = results.filter((r) => r.status === 201).map((r) => r.body);
    const held = won.flatMap((o) => o.seats as string[]);
    expect(new Set(held).size).toBe(held.length);

    // Pay every other winner; the rest expire.
    const paid = won.filter((_, i) => i % 2 === 0);
    for (const o of paid)
      expect(
        (await box('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: o.totalFen, lane: 'lane-1' }))
          .status,
      ).toBe(201);
    clock.advance(61_000);
    await t.api('POST', '/v1/sweeps');
    const map = await seatMap(ev);
    const paidSeats = new Set(paid.flatMap((o) => o.seats as string[]));
    for (const id of ids) expect([id, map[id]]).toEqual([id, paidSeats.has(id) ? 'sold' : 'free']);
    const tickets = await t.app.db.read((m) =>
      rows<{ seat_id: string }>(m, 'SELECT seat_id FROM ticket WHERE event_id = ?', [ev]),
    );
    expect(tickets.map((x) => x.seat_id).sort()).toEqual([...paidSeats].sort());
  });

  it('a hold with an unknown card payment survives its TTL; a confirmed failure then frees the seats', async () => {
    const ev = await event(2);
    const hold = (await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1', 'A1-2'], ttlSeconds: 5 })).body;
    const pay = await box('POST', `/v1/orders/${hold.id}/payments`, {
      method: 'card',
      amountFen: hold.totalFen,
      lane: 'lane-1',
    });
    expect((await box('GET', `/v1/payments/${pay.body.id}?wait=5`)).body.status).toBe('unknown');
    clock.advance(3600_000);
    await t.api('POST', '/v1/sweeps');
    expect(await seatMap(ev)).toEqual({ 'A1-1': 'held', 'A1-2': 'held' });
    expect(
      (
        await office('POST', `/v1/payments/${pay.body.id}/resolve`, {
          outcome: 'declined',
          note: 'acquirer file: not charged',
        })
      ).status,
    ).toBe(200);
    await t.api('POST', '/v1/sweeps');
    expect(await seatMap(ev)).toEqual({ 'A1-1': 'free', 'A1-2': 'free' });
    expect((await box('GET', `/v1/orders/${hold.id}`)).body.status).toBe('expired');
  });

  it('a hold with an unknown card payment that proves approved gets its tickets', async () => {
    const ev = await event(1);
    const hold = (await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1'], ttlSeconds: 5 })).body;
    const pay = await box('POST', `/v1/orders/${hold.id}/payments`, {
      method: 'card',
      amountFen: hold.totalFen,
      lane: 'lane-1',
    });
    await box('GET', `/v1/payments/${pay.body.id}?wait=5`);
    clock.advance(600_000);
    await t.api('POST', '/v1/sweeps');
    expect(await seatMap(ev)).toEqual({ 'A1-1': 'held' });
    await office('POST', `/v1/payments/${pay.body.id}/resolve`, {
      outcome: 'approved',
      note: 'bank confirms the charge',
    });
    expect(await seatMap(ev)).toEqual({ 'A1-1': 'sold' });
    expect((await box('GET', `/v1/orders/${hold.id}/tickets`)).body).toHaveLength(1);
  });

  it('an expired hold with no payment is released by the sweep; a live one can be extended', async () => {
    const ev = await event(2);
    const a = (await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1'], ttlSeconds: 30 })).body;
    const b = (await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-2'], ttlSeconds: 30 })).body;
    clock.advance(20_000);
    const ext = await box('POST', `/v1/holds/${b.id}/extend`, { ttlSeconds: 300 });
    expect(ext.status).toBe(200);
    clock.advance(20_000);
    await t.api('POST', '/v1/sweeps');
    expect(await seatMap(ev)).toEqual({ 'A1-1': 'free', 'A1-2': 'held' });
    expect((await box('POST', `/v1/holds/${a.id}/extend`, { ttlSeconds: 300 })).status).toBe(409);
  });

  it('a hold and a refusal sent with an Idempotency-Key are each answered once and replayed', async () => {
    const ev = await event(4);
    const key = { 'idempotency-key': `hold-${ev}` };
    const first = await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1', 'A1-2'] }, key);
    expect(first.status).toBe(201);
    const again = await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1', 'A1-2'] }, key);
    expect([again.status, again.body.id]).toEqual([201, first.body.id]);
    const refusedKey = { 'idempotency-key': `refused-${ev}` };
    const refused = await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-2', 'A1-3'] }, refusedKey);
    expect([refused.status, refused.body.error.code]).toEqual([409, 'seat_unavailable']);
    const replayed = await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-2', 'A1-3'] }, refusedKey);
    expect([replayed.status, replayed.body]).toEqual([409, refused.body]);
    const map = await seatMap(ev);
    expect([map['A1-1'], map['A1-2'], map['A1-3']]).toEqual(['held', 'held', 'free']);
  });

  it('best available: N adjacent seats in one row', async () => {
    const ev = await event(20, 10);
    await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-3', 'A1-7'] });
    const r = await box('POST', `/v1/events/${ev}/holds`, { count: 4, section: 'A' });
    expect(r.status).toBe(201);
    const nums = (r.body.seats as string[]).map((s) => s.split('-'));
    expect(new Set(nums.map((n) => n[0])).size).toBe(1);
    const ns = nums.map((n) => Number(n[1])).sort((x, y) => x - y);
    expect(ns[3] - ns[0]).toBe(3);
    expect((await box('POST', `/v1/events/${ev}/holds`, { count: 20, section: 'A' })).status).toBe(409);
  });

  it('tickets are issued once even when the order is paid by concurrent tenders', async () => {
    const ev = await event(1);
    const hold = (await box('POST', `/v1/events/${ev}/holds`, { seats: ['A1-1'] })).body;
    const pays = await Promise.all(
      [1, 2, 3].map(() =>
        box('POST', `/v1/orders/${hold.id}/payments`, { method: 'cash', amountFen: hold.totalFen, lane: 'lane-1' }),
      ),
    );
    expect(pays.filter((p) => p.status === 201)).toHaveLength(1);
    expect((await box('GET', `/v1/orders/${hold.id}/tickets`)).body).toHaveLength(1);
  });

  describe('bad input changes nothing', () => {
    it.each([
      ['unknown seat', { seats: ['ZZ-9'] }, 422, 'unknown_seat'],
      ['duplicate seats', { seats: ['A1-1', 'A1-1'] }, 422, 'duplicate_seat'],
      ['empty set', { seats: [] }, 400, 'invalid_request'],
      ['ttl too short', { seats: ['A1-1'], ttlSeconds: 4 }, 400, 'invalid_request'],
      ['ttl too long', { seats: ['A1-1'], ttlSeconds: 7201 }, 400, 'invalid_request'],
      ['fractional ttl', { seats: ['A1-1'], ttlSeconds: 1.5 }, 400, 'invalid_request'],
      ['ttl not a number', { seats: ['A1-1'], ttlSeconds: 'x' }, 400, 'invalid_request'],
      ['seats not a list', { seats: 'A1-1' }, 400, 'invalid_request'],
      ['no seats and no count', {}, 400, 'invalid_request'],
    ])('%s', async (_label, body, status, code) => {
      const ev = await event(2);
      const r = await box('POST', `/v1/events/${ev}/holds`, body);
      expect(r.status).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(await seatMap(ev)).toEqual({ 'A1-1': 'free', 'A1-2': 'free' });
    });

    it('an unknown event is a 404; a duplicate event a 409; a duplicate seat in an event a 422', async () => {
      expect((await box('POST', '/v1/events/nope/holds', { seats: ['A1-1'] })).status).toBe(404);
      const ev = await event(1);
      expect(
        (await office('POST', '/v1/events', { id: ev, name: 'x', seats: [{ id: 'S1', priceFen: 1 }] })).status,
      ).toBe(409);
      const dup = await office('POST', '/v1/events', {
        id: `${ev}b`,
        name: 'x',
        seats: [
          { id: 'S1', priceFen: 1 },
          { id: 'S1', priceFen: 1 },
        ],
      });
      expect(dup.status).toBe(422);
      expect((await box('GET', `/v1/events/${ev}b/seats`)).status).toBe(404);
    });
  });
});
