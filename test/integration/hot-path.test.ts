import { ManualClock } from '../../src/shared/clock';
import { testDbKinds } from '../support/dbs';
import { startTestApp, TestApp } from '../support/app';

/**
 * The hot path (src/http/hot-path.ts) serves seat holds, orders and tenders without express's routing.
 * Two services, one with it and one without (POS_HOT_PATH=off), are asked the same things in the same
 * order, good and bad; every answer, its status and its headers must be the same, and so must the
 * latency histogram's route labels.
 */
describe.each(testDbKinds())('the hot path on $name answers as express does', ({ name }) => {
  const services: { t: TestApp; clock: ManualClock }[] = [];

  beforeAll(async () => {
    for (const hotPath of [true, false]) {
      const clock = new ManualClock(new Date('2026-12-06T02:00:00Z'));
      const t = await startTestApp(name, { clock, config: { hotPath, cashLanes: ['lane-1', 'lane-2'] } });
      services.push({ t, clock });
    }
  });
  afterAll(async () => {
    for (const s of services) await s.t.stop();
  });

  /** Ids, request ids and times differ between the two services; everything else must not. */
  const same = (v: unknown): unknown => {
    if (typeof v === 'string')
      return v
        .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
        .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>');
    if (Array.isArray(v)) return v.map(same);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, same(x)]));
    return v;
  };

  it('for seat holds, orders and tenders, good and bad, and the metrics label them alike', async () => {
    const answers: unknown[][] = [];
    for (const { t } of services) {
      const office = await t.as('backoffice');
      const till = await t.as('cashier');
      const lane2 = await t.as('cashier', 'lane-2');
      const seen: unknown[] = [];
      const note = (what: string, r: { status: number; body: unknown; headers: Headers }) =>
        seen.push({
          what,
          status: r.status,
          body: same(r.body),
          type: r.headers.get('content-type'),
          requestId: /^[\w.:-]{1,64}$/.test(r.headers.get('x-request-id') ?? ''),
        });
      const raw = async (path: string, body: string, headers: Record<string, string>) => {
        const r = await fetch(t.url + path, { method: 'POST', body, headers });
        const text = await r.text();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* text */
        }
        return { status: r.status, body: parsed, headers: r.headers };
      };
      expect((await office('PUT', '/v1/skus/HOT1', { name: 'hot thing', priceFen: 250 })).status).toBe(200);
      await office('POST', '/v1/stock/receipts', { lines: [{ sku: 'HOT1', qty: 5 }] });
      const seats = Array.from({ length: 4 }, (_, i) => ({
        id: `A1-${i + 1}`,
        section: 'A',
        row: '1',
        number: i + 1,
        priceFen: 10_000,
      }));
      expect((await office('POST', '/v1/events', { id: 'gig', name: 'Gig', seats })).status).toBe(201);

      // Seat holds.
      note('hold', await till('POST', '/v1/events/gig/holds', { seats: ['A1-1', 'A1-2'], ttlSeconds: 600 }));
      note('hold taken', await till('POST', '/v1/events/gig/holds', { seats: ['A1-2', 'A1-3'] }));
      note('hold by count', await till('POST', '/v1/events/gig/holds', { count: 1 }));
      note('hold unknown event', await till('POST', '/v1/events/nope/holds', { seats: ['A1-4'] }));
      note('hold unknown field', await till('POST', '/v1/events/gig/holds', { seats: ['A1-4'], color: 'red' }));
      note('hold wrong role', await office('POST', '/v1/events/gig/holds', { seats: ['A1-4'] }));
      note('hold other lane', await lane2('POST', '/v1/events/gig/holds', { seats: ['A1-4'], lane: 'lane-1' }));
      note(
        'hold no key',
        await raw('/v1/events/gig/holds', '{"seats":["A1-4"]}', { 'content-type': 'application/json' }),
      );
      note(
        'hold bad JSON',
        await raw('/v1/events/gig/holds', '{"seats":', {
          'content-type': 'application/json',
          authorization: `Bearer ${t.adminKey}`,
        }),
      );
      note(
        'hold not JSON',
        await raw('/v1/events/gig/holds', 'seats=A1-4', {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Bearer ${t.adminKey}`,
        }),
      );
      note(
        'hold too large',
        await raw('/v1/events/gig/holds', JSON.stringify({ seats: ['A1-4'], pad: 'x'.repeat(70_000) }), {
          'content-type': 'application/json',
          authorization: `Bearer ${t.adminKey}`,
        }),
      );

      // Orders, with and without an Idempotency-Key.
      const sale = { lane: 'lane-1', lines: [{ sku: 'HOT1', qty: 1 }] };
      const order = await till('POST', '/v1/orders', sale);
      note('order', order);
      note('order keyed', await till('POST', '/v1/orders', sale, { 'idempotency-key': 'k-1' }));
      note('order keyed again', await till('POST', '/v1/orders', sale, { 'idempotency-key': 'k-1' }));
      note(
        'order keyed, other body',
        await till('POST', '/v1/orders', { ...sale, lines: [{ sku: 'HOT1', qty: 2 }] }, { 'idempotency-key': 'k-1' }),
      );
      note('order too many', await till('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'HOT1', qty: 50 }] }));
      note(
        'order unknown lane',
        await till('POST', '/v1/orders', { lane: 'lane-9', lines: [{ sku: 'HOT1', qty: 1 }] }),
      );
      note('order other lane', await lane2('POST', '/v1/orders', sale));
      note(
        'order price override',
        await till('POST', '/v1/orders', { ...sale, lines: [{ sku: 'HOT1', qty: 1, unitPriceFen: 1 }] }),
      );

      // Tenders.
      const id = order.body.id as string;
      note(
        'cash, too little',
        await till('POST', `/v1/orders/${id}/payments`, { method: 'cash', amountFen: 100, lane: 'lane-1' }),
      );
      note(
        'cash, other lane key',
        await lane2('POST', `/v1/orders/${id}/payments`, { method: 'cash', amountFen: 150, lane: 'lane-2' }),
      );
      note(
        'cash, the rest',
        await till('POST', `/v1/orders/${id}/payments`, { method: 'cash', amountFen: 150, lane: 'lane-1' }),
      );
      note(
        'cash, paid already',
        await till('POST', `/v1/orders/${id}/payments`, { method: 'cash', amountFen: 1, lane: 'lane-1' }),
      );
      note(
        'tender, not an id',
        await till('POST', '/v1/orders/not-an-id/payments', { method: 'cash', amountFen: 1, lane: 'lane-1' }),
      );
      note(
        'tender, unknown method',
        await till('POST', `/v1/orders/${id}/payments`, { method: 'cheque', amountFen: 1, lane: 'lane-1' }),
      );

      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      const labels = [...metrics.matchAll(/^pos_http_request_seconds_count\{([^}]*)\}/gm)]
        .map((m) => m[1])
        .filter((l) => /route="[^"]*(holds|orders)/.test(l))
        .sort();
      seen.push({ labels });
      answers.push(seen);
    }
    expect(answers[0]).toEqual(answers[1]);
    // 25 asked on a hot route; the services' own set-up went through express.
    expect(services[0].t.app.hotPath!.taken()).toBe(25);
    expect(services[1].t.app.hotPath).toBeNull();
    // The labels name routes, never raw paths.
    expect(JSON.stringify(answers[0])).toContain('route=\\"/v1/events/:id/holds\\"');
  });
});
