/**
 * `npm run bench:reserve`: orders for one hot SKU, then full checkouts (order + cash payment), then
 * a bare express handler, each with autocannon at 64 connections for 10 s against the service in a
 * child process on MariaDB; finally `pos check` on the database the load ran against.
 * BENCH_SECONDS and BENCH_CONNECTIONS override the defaults.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { api, benchDb, cannon, fmt, posCheck, startServer } from './support';

const seconds = Number(process.env.BENCH_SECONDS || 10);
const connections = Number(process.env.BENCH_CONNECTIONS || 64);

function line(label: string, r: autocannon.Result, perOp = 1): { rate: number } {
  const rate = r.requests.average / perOp;
  const errors = r.non2xx + r.errors + r.timeouts;
  console.log(`${label.padEnd(26)} ${fmt(rate).padStart(7)}/s   p50 ${fmt(r.latency.p50, 1)} ms   p99 ${fmt(r.latency.p99, 1)} ms   requests ${fmt(r.requests.total)}   non-2xx/errors ${errors}`);
  return { rate };
}

async function bare(): Promise<autocannon.Result> {
  const child = spawn(process.execPath, [join(__dirname, 'bare-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => {
    child.stdout!.on('data', (d: Buffer) => { const m = /listening on (\S+)/.exec(d.toString()); if (m) resolve(m[1]); });
  });
  try {
    return await cannon({ url: `${url}/v1/orders`, method: 'POST', connections, duration: seconds, headers: { 'content-type': 'application/json', authorization: 'Bearer x' }, body: JSON.stringify({ lane: 'lane-1', lines: [{ sku: 'HOT', qty: 1 }] }) });
  } finally {
    child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const db = await benchDb('reserve');
  const server = await startServer({ databaseUrl: db.url });
  try {
    const admin = api(server.url, server.adminKey);
    const must = async (r: Promise<{ status: number; body: any }>, what: string) => {
      const res = await r;
      if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    await must(admin('PUT', '/v1/skus/HOT', { name: 'Hot item', priceFen: 350 }), 'create SKU');
    for (let i = 0; i < 10; i++) await must(admin('POST', '/v1/stock/receipts', { lines: [{ sku: 'HOT', qty: 1_000_000 }] }), 'receive stock');
    const key = (await must(admin('POST', '/v1/api-keys', { role: 'cashier', lane: 'lane-1' }), 'cashier key')).key as string;
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const orderBody = JSON.stringify({ lane: 'lane-1', lines: [{ sku: 'HOT', qty: 1 }] });
    const payBody = JSON.stringify({ method: 'cash', amountFen: 350, lane: 'lane-1' });

    console.log(`bench:reserve — MariaDB ${db.url.replace(/\/\/[^@]*@/, '//')}, ${connections} connections, ${seconds} s each, server pid ${server.pid}`);
    const orders = await cannon({ url: `${server.url}/v1/orders`, method: 'POST', connections, duration: seconds, headers, body: orderBody });
    const o = line('orders (reserve)', orders);

    const checkouts = await cannon({
      url: server.url, connections, duration: seconds, headers,
      requests: [
        {
          method: 'POST', path: '/v1/orders', body: orderBody,
          onResponse: (status: number, body: string, context: Record<string, unknown>) => { if (status === 201) context.orderId = JSON.parse(body).id; },
        },
        {
          method: 'POST', body: payBody,
          setupRequest: (req: any, context: Record<string, unknown>) => ({ ...req, path: `/v1/orders/${context.orderId}/payments` }),
        },
      ],
    } as autocannon.Options);
    const c = line('checkouts (order + cash)', checkouts, 2);

    const bareRun = await bare();
    const b = line('bare express handler', bareRun);

    const stock = (await admin('GET', '/v1/stock/HOT')).body;
    console.log(`ratio to bare handler: orders ${(o.rate / b.rate).toFixed(3)}, checkouts ${(c.rate / b.rate).toFixed(3)}`);
    console.log(`stock after: onHand ${stock.onHand}, reserved ${stock.reserved}, available ${stock.available}; server peak RSS ${server.peakRssMb()} MB`);
    await server.stop();
    const check = await posCheck(db.url);
    console.log(`pos check: ${check.clean ? 'clean' : 'BREACHES'}\n${check.clean ? '' : check.output}`);
    if (!check.clean) process.exitCode = 1;
  } finally {
    await server.stop();
    await db.drop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
