/**
 * Issue 10, the crash harness: `pos serve` as a real process, `kill -9` at seeded random points while
 * concurrent clients check out (cash and card) and retry with their Idempotency-Keys, restarted each
 * time. The acquirer simulator (and its bank) lives in the test process, so what the card network did
 * outlives every crash, as it does in a store. At the end: every order paid exactly once, no key stuck,
 * no payment left pending, and `pos check` clean. Then a crash while a card is at the terminal.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AcquirerSimulator } from '../../src/acquirer/acp-simulator';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { rows } from '../../src/db/db';
import { checkInvariants } from '../../src/inventory/check';
import { SimScript } from '../../src/terminal/ecr-simulator';
import { freshDb, FreshDb, testDbKinds } from '../support/dbs';
import { ensureBuilt, freePort, repoRoot, seeded, ServiceProcess } from './service-process';

const SEED = Number(process.env.CRASH_SEED ?? 20261125);
const CLIENTS = 5;
const CHECKOUTS = 40; // per client: 200 in all
const PRICE = 1234; // any amount but the demo's 5100/9800/4400 approves
const SILENT = 4400; // the terminal ACKs, the bank charges, no final response ever comes
/** How long a retry keeps getting 409 "in progress" before the key counts as stuck (an idempotency lease must end sooner). */
const LEASE_MS = 3000; // IDEMPOTENCY_LEASE_MS for the service under test (30 s in a store)
const STUCK_AFTER_MS = Number(process.env.CRASH_STUCK_AFTER_MS ?? LEASE_MS + 12_000);

type Res = { status: number; body: any };
class StuckKey extends Error {}

const script: SimScript = {
  otherwise: { action: 'approve', prompts: ['请插卡或挥卡'] },
  byAmount: { [String(SILENT)]: { action: 'silence', bank: 'approved' } },
};

beforeAll(() => ensureBuilt(), 240_000);

describe('pos serve with a device lane', () => {
  it('real lanes trusting the simulated acquirer: pos serve with a device lane and no ACQUIRER_URL exits before listening', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pos-refuse-'));
    const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'src', 'cli.js'), 'serve'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: `sqlite:${join(dir, 'pos.db')}`,
        PORT: '0',
        POS_LOG: 'silent',
        POS_TERMINALS: 'lane-1:/dev/ttyPOS-NOT-THERE',
      },
    });
    expect(r.status).toBe(2);
    expect(r.stdout).not.toMatch(/listening/);
    expect(r.stderr).toMatch(/^pos: lane\(s\) lane-1 drive real terminals.*ACQUIRER_URL=none/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a setting to fix, not a crash: no stack trace
  }, 90_000);
});

describe.each(testDbKinds())('crash harness on $name', ({ name }) => {
  let fdb: FreshDb;
  let acq: AcquirerSimulator;
  let svc: ServiceProcess;
  let base = '';
  const adminKey = `pos_crash_${Math.random().toString(36).slice(2)}`;
  let cashierKey = '';
  const rng = seeded(SEED + (name === 'mysql' ? 1 : 0));
  let requests = 0;
  let nextKill = 0;
  let restarting: Promise<void> | null = null;
  const figures = {
    kills: 0,
    checkouts: 0,
    cash: 0,
    card: 0,
    cardUnknownAfterCrash: 0,
    retries: 0,
    inProgress409: 0,
    declinedButCharged: 0,
    rerunFoundOwnAttempt: 0,
  };

  const crashSoon = () => {
    if (restarting) return;
    // Somewhere inside the next fraction of a second: mid-request, mid-transaction, mid-terminal exchange.
    const delay = Math.floor(rng() * 150);
    restarting = (async () => {
      await new Promise((r) => setTimeout(r, delay));
      await svc.kill();
      figures.kills++;
      await svc.start();
    })().finally(() => {
      restarting = null;
    });
  };

  /** One HTTP call that survives crashes: connection errors and 5xx are retried with the same key. */
  async function call(
    method: string,
    path: string,
    body?: unknown,
    opts: { key?: string; as?: string; countForKills?: boolean } = {},
  ): Promise<Res> {
    const started = Date.now();
    let firstInProgress = 0;
    for (let attempt = 0; ; attempt++) {
      if (restarting) await restarting.catch(() => undefined);
      // Kills are counted in requests the clients mean to make, not in their retries.
      if (attempt === 0) requests++;
      if (attempt === 0 && opts.countForKills !== false && requests >= nextKill && nextKill > 0) {
        nextKill = requests + 20 + Math.floor(rng() * 41);
        crashSoon();
      }
      const headers: Record<string, string> = { authorization: `Bearer ${opts.as ?? cashierKey}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (opts.key) headers['idempotency-key'] = opts.key;
      let res: Res | null;
      try {
        const r = await fetch(base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(20_000),
        });
        const text = await r.text();
        res = { status: r.status, body: text ? JSON.parse(text) : null };
      } catch {
        res = null; // the service died under us (or was not up yet): retry with the same key
      }
      if (res && res.status < 500 && !(res.status === 409 && res.body?.error?.code === 'idempotency_key_in_progress'))
        return res;
      if (res?.status === 409) {
        figures.inProgress409++;
        firstInProgress ||= Date.now();
        if (Date.now() - firstInProgress > STUCK_AFTER_MS)
          throw new StuckKey(`${method} ${path} key ${opts.key}: 409 in progress for ${STUCK_AFTER_MS} ms`);
      }
      figures.retries++;
      if (Date.now() - started > 120_000)
        throw new Error(`${method} ${path}: no answer in 120 s (${res ? res.status : 'connection error'})`);
      await new Promise((r) => setTimeout(r, 100 + Math.floor(rng() * 150)));
    }
  }

  async function waitPayment(id: string, until: (s: string) => boolean, ms: number): Promise<string> {
    const end = Date.now() + ms;
    let status = '';
    while (Date.now() < end) {
      const r = await call('GET', `/v1/payments/${id}?wait=2`);
      status = r.body.status;
      if (until(status)) return status;
    }
    return status;
  }

  const orders: { id: string; client: number; n: number }[] = [];
  const stuck: string[] = [];

  async function checkout(client: number, n: number): Promise<void> {
    const lane = `lane-${client + 1}`;
    const o = await call(
      'POST',
      '/v1/orders',
      { lane, lines: [{ sku: 'CRASH', qty: 1 }] },
      { key: `o-${client}-${n}` },
    );
    if (o.status !== 201) throw new Error(`order: ${o.status} ${JSON.stringify(o.body)}`);
    orders.push({ id: o.body.id, client, n });
    if (rng() < 0.5) {
      figures.card++;
      const p = await call(
        'POST',
        `/v1/orders/${o.body.id}/payments`,
        { method: 'card', amountFen: PRICE, lane },
        { key: `c-${client}-${n}` },
      );
      // A retry re-run after the key's lease (the first run committed, then the service died before recording its answer)
      // finds our own attempt, now unknown: follow that one.
      const rerun =
        p.status === 409 && p.body?.error?.code === 'payment_in_progress'
          ? p.body.error.details?.payments?.[0]?.id
          : undefined;
      if (rerun) figures.rerunFoundOwnAttempt++;
      else if (p.status !== 202) throw new Error(`card tender: ${p.status} ${JSON.stringify(p.body)}`);
      const paymentId: string = rerun ?? p.body.id;
      let status = await waitPayment(paymentId, (s) => s !== 'pending', 20_000);
      if (status === 'unknown') {
        // Only a crash makes this lane's approvals unknown; the sweeper (every 2 s) asks the terminal, then the acquirer.
        figures.cardUnknownAfterCrash++;
        status = await waitPayment(paymentId, (s) => s !== 'unknown', 8_000);
      }
      if (status === 'approved') return;
    } else {
      figures.cash++;
    }
    // Cash for what is still owed (after a declined card, or a card still unknown: then the order may end overpaid).
    const now = await call('GET', `/v1/orders/${o.body.id}`);
    if (now.body.status === 'paid') return;
    const owed = now.body.totalFen - now.body.paidFen;
    const c = await call(
      'POST',
      `/v1/orders/${o.body.id}/payments`,
      { method: 'cash', amountFen: owed, lane, acceptUnknownCard: true },
      { key: `k-${client}-${n}` },
    );
    // The sweeper may settle the unknown card between our look and our tender: then the order is paid already.
    if (c.status === 409 && c.body?.error?.code === 'order_not_payable' && c.body.error.details?.status === 'paid')
      return;
    if (c.status !== 201) throw new Error(`cash tender: ${c.status} ${JSON.stringify(c.body)}`);
  }

  beforeAll(async () => {
    fdb = await freshDb(name);
    acq = new AcquirerSimulator({ bank: new MemorySimBank() });
    await acq.start();
    const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const dir = mkdtempSync(join(tmpdir(), 'pos-crash-'));
    const scriptFile = join(dir, 'script.json');
    writeFileSync(scriptFile, JSON.stringify(script));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    svc = new ServiceProcess({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: fdb.url,
      HOST: '127.0.0.1',
      PORT: String(port),
      POS_ADMIN_KEY: adminKey,
      POS_LOG: 'silent',
      POS_TERMINALS: Array.from({ length: CLIENTS }, (_, i) => `lane-${i + 1}:sim`).join(','),
      POS_SIM_SCRIPT: scriptFile,
      POS_SIM_BANK_URL: acq.url,
      ACQUIRER_URL: acq.url,
      ACQUIRER_MER_ID: '777290058110048',
      ACQUIRER_SIGN_KEY_PEM: merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ACQUIRER_SIGN_CERT_ID: '69243462065',
      ACQUIRER_ROOT_CERT: acq.chain.rootPem,
      ACQUIRER_MIDDLE_CERT: acq.chain.middlePem,
      ACQUIRER_TEST_MODE: 'true',
      ACQUIRER_TIMEOUT_MS: '2000',
      SWEEP_CRON: '*/2 * * * * *',
      IDEMPOTENCY_LEASE_MS: String(LEASE_MS),
      TERMINAL_T_RESP_MS: '1500',
      REVERSAL_GRACE_SECONDS: '3600',
    });
    await svc.start();
    const admin = { as: adminKey, countForKills: false };
    expect(
      (await call('PUT', '/v1/skus/CRASH', { name: 'crash test item', priceFen: PRICE }, admin)).status,
    ).toBeLessThan(300);
    expect(
      (await call('PUT', '/v1/skus/SILENT', { name: 'silent card item', priceFen: SILENT }, admin)).status,
    ).toBeLessThan(300);
    expect(
      (
        await call(
          'POST',
          '/v1/stock/receipts',
          {
            lines: [
              { sku: 'CRASH', qty: 1000 },
              { sku: 'SILENT', qty: 10 },
            ],
          },
          { ...admin, key: 'receipt-1' },
        )
      ).status,
    ).toBe(201);
    const k = await call('POST', '/v1/api-keys', { role: 'cashier' }, { ...admin, key: 'cashier-key' });
    expect(k.status).toBe(201);
    cashierKey = k.body.key;
  }, 120_000);

  afterAll(async () => {
    await svc?.stop();
    await acq?.close();
    await fdb?.drop();
  });

  it('kill -9 at random points during 200 checkouts: every order paid exactly once, no key stuck, pos check clean', async () => {
    const t0 = Date.now();
    nextKill = 20 + Math.floor(rng() * 41);
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let n = 0; n < CHECKOUTS; n++) {
          try {
            await checkout(client, n);
            figures.checkouts++;
          } catch (err) {
            if (err instanceof StuckKey) stuck.push(err.message);
            else throw err;
          }
        }
      }),
    );
    nextKill = 0;
    await restarting;
    // Let the last unknown cards be asked about once more.
    await call('POST', '/v1/sweeps', undefined, { as: adminKey, countForKills: false });

    const dbRows = await fdb.db.read((m) =>
      rows<{ id: string; status: string; total_fen: unknown; paid_fen: unknown; overpaid_fen: unknown }>(
        m,
        'SELECT id, status, total_fen, paid_fen, overpaid_fen FROM orders',
      ),
    );
    const pays = await fdb.db.read((m) =>
      rows<{
        order_id: string;
        method: string;
        status: string;
        amount_fen: unknown;
        refund_state: string | null;
        refund_fen: unknown;
        rf: string | null;
      }>(m, 'SELECT order_id, method, status, amount_fen, refund_state, refund_fen, rf FROM payment'),
    );
    const wrong: string[] = [];
    for (const o of orders) {
      const r = dbRows.find((x) => x.id === o.id);
      const approved = pays.filter((p) => p.order_id === o.id && p.status === 'approved');
      if (!r || r.status !== 'paid') {
        wrong.push(`${o.id} is ${r?.status}`);
        continue;
      }
      // Paid exactly once: what was taken, less what is queued to go back, is the total; a second approved
      // tender exists only when the order is overpaid and that money is on its way back.
      const total = Number(r.total_fen),
        over = Number(r.overpaid_fen);
      const taken = approved.reduce((s, p) => s + Number(p.amount_fen), 0);
      const back = approved.reduce((s, p) => s + (p.refund_state ? Number(p.refund_fen ?? p.amount_fen) : 0), 0);
      if (taken - back !== total) wrong.push(`${o.id}: taken ${taken} - refunds ${back} != total ${total}`);
      if (approved.length !== 1 && !(over > 0 && back === over))
        wrong.push(`${o.id}: ${approved.length} approved tenders, overpaid ${over}, refunds ${back}`);
    }
    const ids = new Set(orders.map((o) => o.id));
    const orphans = dbRows.filter((r) => !ids.has(r.id));
    const pending = pays.filter((p) => p.status === 'pending');
    const breaches = (await checkInvariants(fdb.db)).map((f) => `${f.rule} ${f.subject}: ${f.detail}`);
    // Against the bank: goods are never handed over for a card the bank did not charge. The other way round
    // (declined here, charged there) is counted: it happens when the crash loses both the in-process terminal's
    // journal and the not-yet-recorded ACK, so Q0 `N` reads as "never accepted" (see the report).
    const givenAway: string[] = [];
    for (const p of pays.filter((x) => x.method === 'card' && x.rf)) {
      const bank = await acq.bank.get(p.rf!);
      if (p.status === 'approved' && bank?.status !== 'approved')
        givenAway.push(`${p.rf} approved, bank says ${bank?.status ?? 'none'}`);
      if ((p.status === 'declined' || p.status === 'reversed') && bank?.status === 'approved')
        figures.declinedButCharged++;
    }
    process.stdout.write(
      `crash harness on ${name} (seed ${SEED}): ${JSON.stringify({ ...figures, starts: svc.starts, orders: orders.length, orphanOrders: orphans.length, stuckKeys: stuck.length, seconds: Math.round((Date.now() - t0) / 1000) })}\n`,
    );
    expect({ stuck, wrong, pending: pending.length, breaches, givenAway }).toEqual({
      stuck: [],
      wrong: [],
      pending: 0,
      breaches: [],
      givenAway: [],
    });
    // An order's Idempotency-Key answer commits with the order (issue 15): a request that died after its commit is
    // replayed, never re-run, so no order exists that no client knows of (an orphan holding stock until its hold ends).
    expect(orphans.map((o) => `${o.id} ${o.status}`)).toEqual([]);
    expect(figures.checkouts).toBe(CLIENTS * CHECKOUTS);
    expect(figures.kills).toBeGreaterThanOrEqual(5);
  }, 300_000);

  it('a crash while a card payment is at the terminal: unknown after the restart, then settled by a sweep', async () => {
    const o = await call(
      'POST',
      '/v1/orders',
      { lane: 'lane-1', lines: [{ sku: 'SILENT', qty: 1 }] },
      { key: 'silent-order', countForKills: false },
    );
    expect(o.status).toBe(201);
    const p = await call(
      'POST',
      `/v1/orders/${o.body.id}/payments`,
      { method: 'card', amountFen: SILENT, lane: 'lane-1' },
      { key: 'silent-card', countForKills: false },
    );
    expect(p.status).toBe(202);
    // Kill once the terminal has ACKed (the attempt says so in the database) and the bank has charged the card,
    // before T_RESP runs out. (The simulated terminal dies with the service; the bank, like a real one, does not.)
    for (let i = 0; i < 200; i++) {
      const a = await fdb.db.read((m) =>
        rows<{ acked: unknown }>(m, 'SELECT acked FROM payment WHERE id = ?', [p.body.id]),
      );
      if (Number(a[0]?.acked) === 1 && (await acq.bank.get(p.body.rf))?.status === 'approved') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await svc.kill();
    figures.kills++;
    await svc.start();
    expect((await call('GET', `/v1/payments/${p.body.id}`, undefined, { countForKills: false })).body.status).toBe(
      'unknown',
    );
    expect((await call('GET', '/v1/stock/SILENT', undefined, { countForKills: false })).body).toMatchObject({
      onHand: 10,
      reserved: 1,
    });
    // The bank charged the card; the restarted terminal never heard of the RF, so the sweep asks the acquirer.
    // (An attempt that just became unknown is due for its first check a second later.)
    const seen: string[] = [];
    for (let i = 0; i < 10 && seen.at(-1) !== 'approved'; i++) {
      await new Promise((r) => setTimeout(r, 1100));
      expect((await call('POST', '/v1/sweeps', undefined, { as: adminKey, countForKills: false })).status).toBe(200);
      seen.push((await call('GET', `/v1/payments/${p.body.id}`, undefined, { countForKills: false })).body.status);
    }
    expect(seen.at(-1)).toBe('approved');
    expect(seen.filter((s) => s !== 'unknown' && s !== 'approved')).toEqual([]);
    expect((await call('GET', `/v1/orders/${o.body.id}`, undefined, { countForKills: false })).body).toMatchObject({
      status: 'paid',
      paidFen: SILENT,
    });
    expect((await call('GET', '/v1/stock/SILENT', undefined, { countForKills: false })).body).toMatchObject({
      onHand: 9,
      reserved: 0,
    });
    expect((await checkInvariants(fdb.db)).map((f) => f.rule)).toEqual([]);
  }, 120_000);
});
