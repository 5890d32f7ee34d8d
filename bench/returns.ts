/**
 * `npm run bench:returns`: coupon-limited flash orders (500 concurrent orders for a coupon with 20
 * uses: exactly 20 must get it), then 1 000 returns (paid cash orders of three units, returned in
 * two parts, 32 at a time) against the service in a child process on MariaDB; finally `pos check`.
 * BENCH_FLASH and BENCH_RETURNS override the counts.
 */
import { api, benchDb, fmt, percentile, posCheck, startServer } from './support';

const flash = Number(process.env.BENCH_FLASH || 500);
const returns = Number(process.env.BENCH_RETURNS || 1000);
const parallel = 32;

async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function main(): Promise<void> {
  const db = await benchDb('returns');
  const server = await startServer({ databaseUrl: db.url });
  try {
    const admin = api(server.url, server.adminKey);
    const must = async (r: Promise<{ status: number; body: any }>, what: string) => {
      const res = await r;
      if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    await must(admin('PUT', '/v1/skus/FLASH', { name: 'Flash item', priceFen: 9900 }), 'create SKU');
    await must(admin('PUT', '/v1/skus/RET', { name: 'Returned item', priceFen: 3333 }), 'create SKU');
    await must(
      admin('POST', '/v1/stock/receipts', {
        lines: [
          { sku: 'FLASH', qty: 100_000 },
          { sku: 'RET', qty: 100_000 },
        ],
      }),
      'receive stock',
    );
    await must(admin('PUT', '/v1/coupons/FLASH20', { kind: 'amount_off', amountFen: 5000, maxUses: 20 }), 'coupon');
    await must(admin('PUT', '/v1/coupons/TENOFF', { kind: 'percent_off', percent: 10 }), 'coupon');
    const cashier = api(
      server.url,
      (await must(admin('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' }), 'cashier key')).key,
    );
    console.log(`bench:returns — MariaDB ${db.url.replace(/\/\/[^@]*@/, '//')}, server pid ${server.pid}`);

    let t0 = Date.now();
    const flashRes = await Promise.all(
      Array.from({ length: flash }, async () => {
        const s = Date.now();
        const r = await cashier('POST', '/v1/orders', {
          lane: 'lane-1',
          lines: [{ sku: 'FLASH', qty: 1 }],
          coupon: 'FLASH20',
        });
        return { status: r.status, code: r.body?.error?.code as string | undefined, ms: Date.now() - s };
      }),
    );
    const flashMs = Date.now() - t0;
    const got = flashRes.filter((r) => r.status === 201).length;
    const exhausted = flashRes.filter((r) => r.status === 409 && r.code === 'coupon_exhausted').length;
    const lat = flashRes.map((r) => r.ms);
    const coupon = (await admin('GET', '/v1/coupons/FLASH20')).body;
    console.log(
      `flash: ${flash} concurrent orders for 20 uses in ${fmt(flashMs)} ms (${fmt((flash * 1000) / flashMs)}/s): ${got} got it, ${exhausted} coupon_exhausted, other ${flash - got - exhausted}; p50 ${percentile(lat, 0.5)} ms, p99 ${percentile(lat, 0.99)} ms; coupon reserved ${coupon.reserved}, remaining ${coupon.remaining}`,
    );
    if (got !== 20) process.exitCode = 1;

    // Set-up (not timed): paid orders to return.
    const orders = await pool(Math.ceil(returns / 2), parallel, async () => {
      const o = await must(
        cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku: 'RET', qty: 3 }], coupon: 'TENOFF' }),
        'order',
      );
      await must(
        cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'cash', amountFen: o.totalFen, lane: 'lane-1' }),
        'pay',
      );
      return o as { id: string; totalFen: number };
    });
    t0 = Date.now();
    const retLat: number[] = [];
    let refunded = 0;
    await pool(orders.length * 2, parallel, async (i) => {
      const o = orders[Math.floor(i / 2)];
      const s = Date.now();
      const r = await must(
        cashier('POST', `/v1/orders/${o.id}/returns`, { lines: [{ lineNo: 1, qty: i % 2 === 0 ? 1 : 2 }] }),
        'return',
      );
      retLat.push(Date.now() - s);
      refunded += r.refundFen;
    });
    const retMs = Date.now() - t0;
    const paid = orders.reduce((s, o) => s + o.totalFen, 0);
    console.log(
      `returns: ${orders.length * 2} returns (${parallel} at a time) in ${fmt(retMs)} ms (${fmt((orders.length * 2 * 1000) / retMs)}/s); p50 ${percentile(retLat, 0.5)} ms, p99 ${percentile(retLat, 0.99)} ms; refunded ${refunded} fen of ${paid} paid (${refunded === paid ? 'exact' : 'MISMATCH'})`,
    );
    if (refunded !== paid) process.exitCode = 1;
    console.log(`server peak RSS ${server.peakRssMb()} MB`);
    await server.stop();
    const check = await posCheck(db.url);
    console.log(`pos check: ${check.clean ? 'clean' : 'BREACHES'}\n${check.clean ? '' : check.output}`);
    if (!check.clean) process.exitCode = 1;
  } finally {
    await server.stop();
    await db.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
