import { randomUUID } from 'node:crypto';
import { rows } from '../../src/db/db';
import { testDbKinds } from '../support/dbs';
import { startTestApp, TestApp } from '../support/app';

/**
 * Fuzz of the HTTP edge: ≥ 10 000 malformed requests across every route (found by walking the
 * express router, so a route added later is fuzzed without touching this file) → no 5xx, every 4xx
 * carries `error.code`, and the database is exactly as before (row counts of every table, every stock
 * level and every status).
 *
 * Every non-GET request carries at least one defect that must stop it before it changes anything
 * (no or a made-up key, a role the route refuses, a malformed or unknown path id, JSON that does not
 * parse, a Content-Type that is not JSON, an unknown body field on a strict schema), plus random junk
 * elsewhere (wrong types, missing fields, huge and negative numbers, unicode, unknown query
 * parameters) so the parsers behind the first check are exercised too. Seeded: FUZZ_SEED repeats a run.
 */
const TOTAL = Number(process.env.FUZZ_REQUESTS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

type Role = 'cashier' | 'backoffice' | 'admin';
interface RouteInfo {
  method: string;
  path: string;
  roles: Role[] | null;
  params: string[];
}

/** Every route under the app's router, with the roles its allow() accepts. */
function enumerateRoutes(app: any): RouteInfo[] {
  const out: RouteInfo[] = [];
  const walk = (stack: any[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const path: string = layer.route.path;
        if (path.includes('{') || path.includes('*')) continue; // guards such as /orders/:id/{*rest}, not routes
        const roles = layer.route.stack.map((l: any) => l.handle?.roles).find((r: unknown) => Array.isArray(r)) ?? null;
        for (const method of Object.keys(layer.route.methods)) {
          if (method === '_all') continue;
          out.push({
            method: method.toUpperCase(),
            path: prefix + path,
            roles,
            params: [...path.matchAll(/:(\w+)/g)].map((m) => m[1]),
          });
        }
      } else if (layer.handle?.stack) {
        let sub = prefix;
        if (!layer.slash) {
          const m = layer.matchers?.[0]?.('/v1/x');
          if (!m)
            throw new Error('a router is mounted somewhere this fuzz does not know; teach enumerateRoutes its prefix');
          sub = prefix + m.path;
        }
        walk(layer.handle.stack, sub);
      }
    }
  };
  walk(app.router.stack, '');
  return out;
}

/** mulberry32: small, seeded, good enough to pick junk. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof rng>;

const WEIRD_STRINGS = [
  '',
  ' ',
  'a'.repeat(300),
  '请插卡或挥卡',
  '😀'.repeat(10),
  '\u0000',
  '../../etc/passwd',
  "'; DROP TABLE sku; --",
  '%',
  '_',
  '<script>',
  'null',
  '-1',
  '1e999',
  '0x10',
  'ÄÖÜ',
  '\u202e',
  'lane-1',
  'COLA',
];
const WEIRD_NUMBERS = [
  0,
  -1,
  1.5,
  -0.0001,
  1e12,
  999_999_999_999,
  1_000_000_000_000,
  Number.MAX_SAFE_INTEGER,
  2 ** 63,
  1e308,
  -1e308,
  7,
  1,
];
const FIELDS = [
  'lane',
  'lines',
  'sku',
  'qty',
  'name',
  'priceFen',
  'method',
  'amountFen',
  'outcome',
  'note',
  'role',
  'id',
  'seats',
  'count',
  'section',
  'ttlSeconds',
  'skus',
  'counted',
  'acceptMoved',
  'ref',
  'acceptUnknownCard',
  'coupon',
  'unitPriceFen',
];

function junkValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 4 : 7)) {
    case 0:
      return r.pick(WEIRD_STRINGS);
    case 1:
      return r.pick(WEIRD_NUMBERS);
    case 2:
      return r.pick([true, false, null]);
    case 3:
      return r.pick(['lane-1', 'cash', 'card', 'approved', 'cashier', 'A1', 'FUZZ-1']);
    case 4:
      return Array.from({ length: r.int(4) }, () => junkValue(r, depth + 1));
    default:
      return junkObject(r, depth + 1);
  }
}
function junkObject(r: Rng, depth = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = r.int(5); i > 0; i--) o[r.pick(FIELDS)] = junkValue(r, depth);
  return o;
}
const BAD_JSON = [
  '{',
  '{"lane":',
  '[1,2',
  'nul',
  '{"a":1}}',
  "{'a':1}",
  '\u0000',
  '{"a":NaN}',
  '"just a string"',
  '12',
  'true',
];
const BAD_IDS = [
  'x',
  '1',
  'not-a-uuid',
  '%E8%AF%B7',
  '%00',
  'a'.repeat(100),
  '..',
  '%2F',
  '%20',
  'ABC%25',
  randomUUID().slice(0, 35) + 'z',
  'SELECT',
];
const junkQuery = (r: Rng) =>
  r.pick([
    '',
    '?x=1',
    '?limit=-1',
    '?limit=abc',
    '?status=nope',
    '?from=yesterday',
    '?cursor=zz',
    '?wait=1e9',
    '?q=%E8%AF%B7',
    '?lane=%00',
    '?rf=PM1&x=2',
    '?limit=2',
    '?after=' + 'a'.repeat(80),
  ]);

/** Routes that take no body and do not look at one (h-sweep's admin sweep): an unknown field cannot stop them. */
const IGNORES_BODY = new Set(['POST /v1/sweeps']);

describe.each(testDbKinds())('fuzz on $name', ({ name }) => {
  let t: TestApp;
  const keys: Record<Role, string> = { cashier: '', backoffice: '', admin: '' };
  const ids: Record<string, string[]> = {};

  beforeAll(async () => {
    t = await startTestApp(name, { config: { orderHoldSeconds: 86_400 } });
    const api = t.api;
    for (const role of ['cashier', 'backoffice'] as const)
      keys[role] = (await api('POST', '/v1/api-keys', { role })).body.key;
    keys.admin = t.adminKey;
    // Something of everything for real ids to aim at: SKUs, a reserved and a paid order, an event with a hold, an open count.
    for (const sku of ['FUZZ-1', 'FUZZ-2']) {
      await api('PUT', `/v1/skus/${sku}`, { name: sku, priceFen: 250 });
    }
    await api('POST', '/v1/stock/receipts', {
      lines: [
        { sku: 'FUZZ-1', qty: 50 },
        { sku: 'FUZZ-2', qty: 50 },
      ],
    });
    const reserved = (await api('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'FUZZ-1', qty: 2 }] })).body;
    const paid = (await api('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'FUZZ-2', qty: 1 }] })).body;
    const pay = (
      await api('POST', `/v1/orders/${paid.id}/payments`, { method: 'cash', amountFen: paid.totalFen, lane: 'lane-1' })
    ).body;
    await api('POST', '/v1/events', {
      id: 'fuzzgala',
      name: 'Gala',
      seats: [
        { id: 'A1', priceFen: 100 },
        { id: 'A2', priceFen: 100 },
      ],
    });
    const hold = (await api('POST', '/v1/events/fuzzgala/holds', { seats: ['A1'], ttlSeconds: 7200 })).body;
    const count = (await api('POST', '/v1/stock-counts', { skus: ['FUZZ-1'] })).body;
    ids.order = [reserved.id, paid.id, hold.id];
    ids.payment = [pay.id];
    ids.count = [count.id];
    ids.event = ['fuzzgala'];
    ids.sku = ['FUZZ-1', 'FUZZ-2'];
    for (const id of [reserved.id, paid.id, hold.id, pay.id, count.id]) expect(id).toMatch(/^[0-9a-f-]{36}$/);
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  async function snapshot(): Promise<string> {
    const db = t.app.db;
    const tables =
      db.kind === 'mysql'
        ? (
            await db.read((m) =>
              rows<{ n: string }>(
                m,
                "SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
              ),
            )
          ).map((r) => r.n)
        : (
            await db.read((m) =>
              rows<{ n: string }>(
                m,
                "SELECT name AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
              ),
            )
          ).map((r) => r.n);
    const out: Record<string, unknown> = {};
    for (const tb of tables.sort())
      out[tb] = Number((await db.read((m) => rows<{ c: unknown }>(m, `SELECT COUNT(*) AS c FROM \`${tb}\``)))[0].c);
    out.levels = await db.read((m) => rows(m, 'SELECT sku, on_hand, reserved, price_fen, name FROM sku ORDER BY sku'));
    out.orders = await db.read((m) => rows(m, 'SELECT id, status, paid_fen, expires_at FROM orders ORDER BY id'));
    out.payments = await db.read((m) => rows(m, 'SELECT id, status FROM payment ORDER BY id'));
    out.counts = await db.read((m) => rows(m, 'SELECT id, status FROM stock_count ORDER BY id'));
    return JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  }

  it('≥ 10 000 malformed requests on every route: no 5xx, every 4xx with an error code, nothing changed', async () => {
    const routes = enumerateRoutes(t.app.http);
    expect(routes.length).toBeGreaterThanOrEqual(15);
    const r = rng(SEED);
    const before = await snapshot();
    const failures: string[] = [];
    const perRoute = new Map<string, number>();
    let sent = 0;

    const idFor = (route: RouteInfo, param: string): string => {
      const kind =
        param === 'sku'
          ? 'sku'
          : route.path.startsWith('/v1/events/')
            ? 'event'
            : route.path.startsWith('/v1/payments/')
              ? 'payment'
              : route.path.startsWith('/v1/stock-counts/')
                ? 'count'
                : 'order';
      return r.pick(ids[kind] ?? ['x']);
    };

    /** One request with at least one defect that must stop it (GETs may be valid: they change nothing). */
    const build = (route: RouteInfo) => {
      const defects: string[] = ['noAuth', 'badAuth'];
      const wrongRoles = route.roles
        ? (['cashier', 'backoffice'] as Role[]).filter((x) => !route.roles!.includes(x))
        : [];
      if (wrongRoles.length) defects.push('wrongRole', 'wrongRole');
      if (route.params.length) defects.push('badParam', 'badParam', 'missingId', 'missingId');
      if (route.method !== 'GET') defects.push('badJson', 'wrongType');
      if (route.method !== 'GET' && !IGNORES_BODY.has(`${route.method} ${route.path}`))
        defects.push('unknownField', 'unknownField');
      if (route.method === 'GET') defects.push('none', 'none', 'none');
      // Keys guessed at random are rate-limited per address: keep them rare so real keys stay in play.
      let defect = r.pick(defects);
      if ((defect === 'noAuth' || defect === 'badAuth') && r.chance(0.85)) defect = r.pick(defects);
      const allowed = route.roles ?? ['admin'];
      let role: Role = r.chance(0.3) ? 'admin' : r.pick(allowed);
      let auth: string | null = `Bearer ${keys[role]}`;
      if (defect === 'noAuth') auth = r.pick([null, 'Bearer', 'Basic abc', `Bearer ${keys.admin} extra`]);
      if (defect === 'badAuth') auth = `Bearer pos_${r.pick(['x', randomUUID(), '请'.repeat(3), 'A'.repeat(600)])}`;
      if (defect === 'wrongRole') {
        role = r.pick(wrongRoles);
        auth = `Bearer ${keys[role]}`;
      }
      let path = route.path;
      for (const p of route.params) {
        let v: string;
        if (defect === 'badParam') v = r.pick(BAD_IDS);
        else if (defect === 'missingId' && p !== 'sku') v = randomUUID();
        else if (defect === 'missingId') v = r.pick(BAD_IDS);
        else v = r.chance(0.7) ? idFor(route, p) : r.pick([randomUUID(), ...BAD_IDS]);
        if (route.method !== 'GET' && p === 'sku' && !['badParam', 'missingId'].includes(defect)) v = r.pick(ids.sku); // existing codes only: a new code would be created
        path = path.replace(`:${p}`, v.startsWith('%') ? v : encodeURIComponent(v));
      }
      path += route.method === 'GET' || r.chance(0.3) ? junkQuery(r) : '';
      const headers: Record<string, string> = {};
      if (auth !== null) headers.authorization = auth;
      let body: string | undefined;
      if (route.method !== 'GET') {
        // fetch cannot send a body with a GET
        if (defect === 'badJson') {
          body = r.pick(BAD_JSON);
          headers['content-type'] = 'application/json';
        } else if (defect === 'wrongType') {
          body = r.chance(0.5) ? JSON.stringify(junkObject(r)) : 'sku,counted\nFUZZ-1,1\n';
          const type = r.pick([
            null,
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/xml',
            'multipart/form-data; boundary=x',
          ]);
          if (type) headers['content-type'] = type;
        } else {
          const value =
            defect === 'unknownField'
              ? { ...junkObject(r), [r.pick(['__fuzz', 'discountFen', 'isAdmin', '请'])]: junkValue(r) }
              : r.chance(0.8)
                ? junkObject(r)
                : junkValue(r);
          body = JSON.stringify(value);
          headers['content-type'] = r.pick(['application/json', 'application/json; charset=utf-8']);
        }
      }
      if (r.chance(0.05)) headers['idempotency-key'] = r.pick(['', ' bad key', 'ü'.repeat(5), 'x'.repeat(200)]);
      // Header values go out as their UTF-8 bytes (fetch only takes byte strings).
      for (const h of Object.keys(headers)) headers[h] = Buffer.from(headers[h], 'utf8').toString('latin1');
      return { method: route.method, path, headers, body, defect, mustFail: route.method !== 'GET' };
    };

    const worker = async () => {
      while (sent < TOTAL) {
        sent++;
        const route = routes[sent % routes.length];
        const req = build(route);
        let status: number;
        let text: string;
        try {
          const res = await fetch(t.url + req.path, { method: req.method, headers: req.headers, body: req.body });
          status = res.status;
          text = await res.text();
        } catch (err) {
          failures.push(`${req.method} ${req.path}: transport ${String(err)}`);
          continue;
        }
        perRoute.set(`${route.method} ${route.path}`, (perRoute.get(`${route.method} ${route.path}`) ?? 0) + 1);
        let code: unknown;
        try {
          code = JSON.parse(text)?.error?.code;
        } catch {
          code = undefined;
        }
        const label = `${req.method} ${req.path} [${req.defect}] ${req.body?.slice(0, 80) ?? ''} -> ${status} ${text.slice(0, 160)}`;
        if (status >= 500) failures.push(`5xx: ${label}`);
        else if (status >= 400 && typeof code !== 'string') failures.push(`4xx without error.code: ${label}`);
        else if (req.mustFail && status < 400) failures.push(`accepted a malformed request: ${label}`);
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 12 }, worker));
    const seconds = (Date.now() - started) / 1000;
    const after = await snapshot();
    console.log(
      `fuzz on ${name}: ${sent} requests over ${routes.length} routes in ${seconds.toFixed(1)} s (seed ${SEED}); ${failures.length} failures`,
    );
    expect(sent).toBeGreaterThanOrEqual(TOTAL);
    expect([...perRoute.keys()].sort()).toEqual(routes.map((x) => `${x.method} ${x.path}`).sort());
    expect(failures.slice(0, 20)).toEqual([]);
    expect(after).toEqual(before);
    expect(await t.check()).toEqual([]);
  }, 180_000);
});
