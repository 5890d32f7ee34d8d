/**
 * T+1 reconciliation against the acquirer simulator over HTTP: the file settles unknown attempts,
 * disputes settled failures, lists differences, waits for files not there yet, refuses files that
 * do not add up, and applies every automatic action once however often a day is re-run.
 */
import { AcquirerSimulator } from '../../src/acquirer/acp-simulator';
import { HttpAcquirer } from '../../src/acquirer/acp-client';
import { ResponseVerifier } from '../../src/acquirer/acp-verify';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { generateMerchantKey, generateTestChain } from '../../src/acquirer/test-chain';
import { clearFileFaults, fileRequests, setFileFault, zmLinesFor } from '../../src/acquirer/acp-file-simulator';
import { BankTxn } from '../../src/acquirer/sim-bank';
const zmLinesOf = (txns: BankTxn[]) => zmLinesFor(txns, '777290058110048');
import { ReconciliationService } from '../../src/reconciliation/reconciliation.service';
import { streamToBuffer, writeReconZip } from '../../src/reconciliation/recon-zip';
import { addDays, mmdd, settleDayAt } from '../../src/reconciliation/settle-day';
import { formatZmLine } from '../../src/reconciliation/zm-format';
import { chinaTimestamp, ManualClock } from '../../src/shared/clock';
import { testDbKinds } from '../support/dbs';
import { Api, startTestApp, TestApp } from '../support/app';
import { SilentTerminal } from '../support/unknown-terminal';

const MER_ID = '777290058110048';
const merchant = generateMerchantKey();
// Days relative to today, so the suite means the same whenever it runs.
const TODAY = settleDayAt(new Date());
const D = addDays(TODAY, -8);
/** 10:00 China time on a day. */
const morningOf = (day: string) => new Date(`${day}T02:00:00Z`);
/** hh:mm:ss China time on a day. */
const chinaAt = (day: string, hms: string) => new Date(Date.parse(`${day}T${hms}+08:00`));

describe.each(testDbKinds())('reconciliation on $name', ({ name }) => {
  let t: TestApp;
  let clock: ManualClock;
  let sim: AcquirerSimulator;
  let bank: MemorySimBank;
  let lane: SilentTerminal;
  let cashier: Api;
  let office: Api;
  let recon: ReconciliationService;

  beforeAll(async () => {
    clock = new ManualClock(morningOf(D));
    bank = new MemorySimBank();
    const chain = generateTestChain('POS Sim', { notBefore: new Date(Date.now() - 60 * 86400_000) });
    sim = new AcquirerSimulator({ bank, chain, merchantCertPem: merchant.certPem, now: () => clock.now() });
    await sim.start();
    const acquirer = new HttpAcquirer({
      baseUrl: sim.url,
      merId: MER_ID,
      key: merchant,
      timeoutMs: 2000,
      verifier: new ResponseVerifier({ rootPem: chain.rootPem, middlePem: chain.middlePem, testMode: true }, clock),
    });
    lane = new SilentTerminal('lane-1', bank, clock);
    t = await startTestApp(name, {
      clock,
      acquirer,
      terminals: new Map([['lane-1', lane]]),
      config: { reversalGraceSeconds: 3600, suspenseAfterSeconds: 30 * 86400, orderHoldSeconds: 30 * 86400 },
    });
    recon = t.app.extensions.find((e) => e.name === 'reconciliation')!.service as ReconciliationService;
    cashier = await t.as('cashier');
    office = await t.as('backoffice');
  });
  afterAll(async () => {
    await t?.stop();
    await sim?.close();
  });
  afterEach(async () => {
    clearFileFaults(sim);
    expect(await t.check()).toEqual([]);
  });

  let seq = 0;
  async function attempt(did: 'approved' | 'declined' | 'none', at: Date, amountFen = 600) {
    clock.set(at);
    const sku = `RC-${name}-${++seq}`;
    await office('PUT', `/v1/skus/${sku}`, { name: sku, priceFen: amountFen });
    await office('POST', '/v1/stock/receipts', { lines: [{ sku, qty: 4 }] });
    const o = (await cashier('POST', '/v1/orders', { lane: 'lane-1', lines: [{ sku, qty: 1 }] })).body;
    lane.plan = () => did;
    const r = await cashier('POST', `/v1/orders/${o.id}/payments`, { method: 'card', amountFen, lane: 'lane-1' });
    const p = (await cashier('GET', `/v1/payments/${r.body.id}?wait=5`)).body;
    expect(p.status).toBe('unknown');
    return { orderId: o.id as string, paymentId: p.id as string, rf: p.rf as string, sku };
  }
  /** An attempt the acquirer approved and the sweeper learnt about (approved, with the acquirer's settleDate). */
  async function approved(at: Date, amountFen = 600) {
    const a = await attempt('approved', at, amountFen);
    clock.advance(1000);
    expect((await t.api('POST', '/v1/sweeps')).status).toBe(200);
    expect((await payment(a.paymentId)).status).toBe('approved');
    return a;
  }
  const payment = async (id: string) => (await cashier('GET', `/v1/payments/${id}`)).body;
  const stock = async (sku: string) => (await cashier('GET', `/v1/stock/${sku}`)).body;
  /** Uploads a settle day's ZIP in the morning after it, as the back office does. */
  async function uploadZip(day: string, zip: Buffer): Promise<{ status: number; run: any }> {
    clock.set(morningOf(TODAY));
    const res = await fetch(`${t.url}/v1/reconciliations?settleDate=${day}`, {
      method: 'POST',
      body: zip,
      headers: { 'content-type': 'application/zip', authorization: `Bearer ${t.adminKey}` },
    });
    return { status: res.status, run: await res.json() };
  }
  const items = async (runId: string, q = '') =>
    (await office('GET', `/v1/reconciliations/${runId}/items${q}`)).body.items as any[];
  const itemOf = async (runId: string, paymentId: string) =>
    (await items(runId)).find((i) => i.paymentId === paymentId);
  let runs = 0;
  async function runDay(day: string, expected = 201) {
    // A second apart, so runs of a day sort by when they were asked for.
    clock.set(new Date(morningOf(TODAY).getTime() + ++runs * 1000));
    const r = await office('POST', '/v1/reconciliations', { settleDate: day });
    expect(r.status).toBe(expected);
    return r.body;
  }

  // Day D's trades, made in order so that the sweeper settles only the ones meant to be approved.
  let matched: Awaited<ReturnType<typeof approved>>;
  let mismatch: Awaited<ReturnType<typeof approved>>;
  let shortSide: Awaited<ReturnType<typeof approved>>;
  let wasDeclined: Awaited<ReturnType<typeof attempt>>;
  let settledUnknown: Awaited<ReturnType<typeof attempt>>;
  let absentUnknown: Awaited<ReturnType<typeof attempt>>;
  let lateNight: Awaited<ReturnType<typeof attempt>>;

  it('sets up a day of trades', async () => {
    matched = await approved(morningOf(D));
    mismatch = await approved(morningOf(D));
    // The acquirer settled 6.50 for what we recorded as 6.00.
    const b = (await bank.get(mismatch.rf))!;
    await bank.record({ ...b, amountFen: 650 });
    shortSide = await approved(morningOf(D));
    await bank.reverse(shortSide.rf); // we approved it; the acquirer will not settle it
    wasDeclined = await attempt('approved', morningOf(D));
    await t.app.payments.resolve(wasDeclined.paymentId, 'declined', 'the customer said the card was refused', 'test');
    settledUnknown = await attempt('approved', morningOf(D));
    absentUnknown = await attempt('none', morningOf(D));
    // 22:59:50 China time: ours says day D by the cut-off; the acquirer's clock put it in D+1.
    lateNight = await attempt('approved', chinaAt(D, '22:59:50'));
    const late = (await bank.get(lateNight.rf))!;
    await bank.record({ ...late, settleDate: mmdd(addDays(D, 1)) });
    // A line with an order id we never issued.
    await bank.record({
      orderId: 'FOREIGN-ORDER-1',
      amountFen: 1234,
      status: 'approved',
      txnTime: chinaTimestamp(morningOf(D)),
      respCode: '00',
    });
  });

  let runD1: any;
  it('classifies every line and every payment of the day, and applies the automatic actions', async () => {
    runD1 = await runDay(D);
    expect(runD1).toMatchObject({ settleDate: D, status: 'done', source: 'download', merId: MER_ID, latest: true });
    expect(runD1.file.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(runD1.file.lines).toBe(5); // matched, mismatch, wasDeclined, settledUnknown, foreign
    expect(runD1.totals).toMatchObject({ count: 5, amountFen: 600 + 650 + 600 + 600 + 1234 });
    expect(runD1.counts).toEqual({ matched: 1, amountMismatch: 1, acquirerOnly: 3, oursOnly: 0, pendingCutoff: 3 });

    expect(await itemOf(runD1.id, matched.paymentId)).toMatchObject({
      class: 'matched',
      ourAmountFen: 600,
      acquirerAmountFen: 600,
      txnType: '01',
    });
    expect(await itemOf(runD1.id, mismatch.paymentId)).toMatchObject({
      class: 'amount_mismatch',
      ourAmountFen: 600,
      acquirerAmountFen: 650,
    });
    expect(await itemOf(runD1.id, settledUnknown.paymentId)).toMatchObject({
      class: 'acquirer_only',
      ourStatus: 'unknown',
      action: { kind: 'approve', state: 'applied' },
    });
    expect(await itemOf(runD1.id, wasDeclined.paymentId)).toMatchObject({
      class: 'acquirer_only',
      ourStatus: 'declined',
      action: { kind: 'dispute', state: 'applied' },
    });
    expect((await items(runD1.id)).find((i) => i.rf === 'FOREIGN-ORDER-1')).toMatchObject({
      class: 'acquirer_only',
      paymentId: null,
      acquirerAmountFen: 1234,
    });
    for (const p of [shortSide, absentUnknown, lateNight])
      expect(await itemOf(runD1.id, p.paymentId)).toMatchObject({ class: 'pending_cutoff', acquirerAmountFen: null });

    // The unknown attempt the acquirer settled is approved by the file: its order is paid and its goods sold.
    expect((await payment(settledUnknown.paymentId)).status).toBe('approved');
    expect(await stock(settledUnknown.sku)).toMatchObject({ onHand: 3, reserved: 0 });
    expect((await payment(wasDeclined.paymentId)).status).toBe('disputed');
    // Pending ones are not acted on before T+2.
    expect((await payment(absentUnknown.paymentId)).status).toBe('unknown');
  });

  it('re-runs supersede the earlier run, keep it, and apply nothing twice', async () => {
    const again = await runDay(D);
    const third = await runDay(D);
    expect(third.counts).toEqual(runD1.counts);
    const list = (await office('GET', `/v1/reconciliations?settleDate=${D}`)).body.runs;
    expect(list.map((r: any) => r.id)).toEqual([third.id, again.id, runD1.id]);
    expect(list.map((r: any) => r.latest)).toEqual([true, false, false]);
    expect(await itemOf(third.id, settledUnknown.paymentId)).toMatchObject({
      class: 'acquirer_only',
      action: { kind: 'approve', state: 'already' },
    });
    expect(await itemOf(third.id, wasDeclined.paymentId)).toMatchObject({
      class: 'acquirer_only',
      action: { kind: 'dispute', state: 'already' },
    });
    expect(await stock(settledUnknown.sku)).toMatchObject({ onHand: 3, reserved: 0 }); // sold once
    runD1 = third;
  });

  it("finds the trade made before the cut-off in the next day's file", async () => {
    const next = await runDay(addDays(D, 1));
    expect(next.status).toBe('done');
    const line = await itemOf(next.id, lateNight.paymentId);
    expect(line).toMatchObject({
      class: 'acquirer_only',
      action: { kind: 'approve', state: 'applied' },
      settleDate: addDays(D, 1),
    });
    expect((await payment(lateNight.paymentId)).status).toBe('approved');
    // Day D's item is no longer pending: it was found after the cut-off.
    const onD = await itemOf(runD1.id, lateNight.paymentId);
    expect(onD.class).toBe('matched');
    expect(onD.note).toContain(addDays(D, 1));
    const d = (await office('GET', `/v1/reconciliations/${runD1.id}`)).body;
    expect(d.counts).toMatchObject({ pendingCutoff: 2, matched: 2 });
  });

  it('after T+2 a missing approved payment is ours_only and a missing unknown one is declined by the file', async () => {
    const t2 = await runDay(addDays(D, 2));
    expect(t2.status).toBe('done');
    expect(await itemOf(runD1.id, shortSide.paymentId)).toMatchObject({
      class: 'ours_only',
      ourStatus: 'approved',
      action: null,
    });
    expect(await itemOf(runD1.id, absentUnknown.paymentId)).toMatchObject({
      class: 'ours_only',
      ourStatus: 'unknown',
      action: { kind: 'decline', state: 'applied' },
    });
    expect((await payment(absentUnknown.paymentId)).status).toBe('declined');
    expect((await payment(shortSide.paymentId)).status).toBe('approved'); // a person works the short side
    const d = (await office('GET', `/v1/reconciliations/${runD1.id}`)).body;
    expect(d.counts).toEqual({ matched: 2, amountMismatch: 1, acquirerOnly: 3, oursOnly: 2, pendingCutoff: 0 });
  });

  it('a re-run of a day whose next two files are in gives the same classes and declines nothing twice', async () => {
    const again = await runDay(D);
    expect(again.counts).toEqual({ matched: 1, amountMismatch: 1, acquirerOnly: 3, oursOnly: 2, pendingCutoff: 0 });
    expect(await itemOf(again.id, absentUnknown.paymentId)).toMatchObject({
      class: 'ours_only',
      ourStatus: 'unknown',
      action: { kind: 'decline', state: 'already' },
    });
    runD1 = again;
  });

  it('resolutions are audited and stay resolved across re-runs', async () => {
    const it1 = await itemOf(runD1.id, shortSide.paymentId);
    const r = await office('POST', `/v1/reconciliations/items/${it1.id}/resolve`, {
      action: 'chase',
      note: 'asked the acquirer, ticket 42',
    });
    expect(r.status).toBe(200);
    expect(r.body.resolution).toMatchObject({ action: 'chase', note: 'asked the acquirer, ticket 42' });
    const r2 = await office('POST', `/v1/reconciliations/items/${it1.id}/resolve`, {
      action: 'accept_acquirer',
      note: 'refunded the customer',
    });
    expect(r2.body.resolution.action).toBe('accept_acquirer');
    const r3 = await office('POST', `/v1/reconciliations/items/${it1.id}/resolve`, {
      action: 'accept_ours',
      note: 'changed my mind',
    });
    expect(r3.status).toBe(409);
    expect(r3.body.error.code).toBe('already_resolved');
    const matchedItem = await itemOf(runD1.id, matched.paymentId);
    expect(
      (await office('POST', `/v1/reconciliations/items/${matchedItem.id}/resolve`, { action: 'chase', note: 'x' })).body
        .error.code,
    ).toBe('nothing_to_resolve');
    const again = await runDay(D);
    expect((await itemOf(again.id, shortSide.paymentId)).resolution).toMatchObject({
      action: 'accept_acquirer',
      note: 'refunded the customer',
    });
    const audit = (await t.fdb.db.ds.query(
      "SELECT action FROM audit_log WHERE entity = 'reconciliation_item' AND entity_id = ?",
      [String(it1.id)],
    )) as { action: string }[];
    expect(audit.length).toBe(2);
    runD1 = again;
  });

  it('lists items by class, paged, and as CSV', async () => {
    const page = (await office('GET', `/v1/reconciliations/${runD1.id}/items?limit=3`)).body;
    expect(page.items).toHaveLength(3);
    const rest = (await office('GET', `/v1/reconciliations/${runD1.id}/items?after=${page.next}&limit=100`)).body;
    expect(page.items.length + rest.items.length).toBe(7);
    expect(rest.next).toBeNull();
    const only = await items(runD1.id, '?class=ours_only');
    expect(only.map((i) => i.paymentId).sort()).toEqual([shortSide.paymentId, absentUnknown.paymentId].sort());
    const csv = await office('GET', `/v1/reconciliations/${runD1.id}/items?format=csv&class=amount_mismatch`);
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    const rows = (csv.body as string).trim().split('\n');
    expect(rows[0]).toBe(
      'id,class,rf,paymentId,ourStatus,ourAmountFen,acquirerAmountFen,txnType,queryId,traceNo,terminalId,settleDate,action,resolution,note',
    );
    expect(rows).toHaveLength(2);
    expect(rows[1]).toContain(`amount_mismatch,${mismatch.rf},${mismatch.paymentId},approved,600,650`);
  });

  it('a file not there yet leaves the run waiting, retried until it comes', async () => {
    const day = addDays(D, 3);
    setFileFault(sim, mmdd(day), '98', 1);
    const w = await runDay(day, 202);
    expect(w).toMatchObject({ status: 'waiting', attempts: 1 });
    expect(w.problem.respCode).toBe('98');
    clock.advance(4 * 60_000);
    expect((await recon.retryDue()).attempted).toBe(0); // not due yet
    clock.advance(2 * 60_000);
    expect((await recon.retryDue()).attempted).toBe(1);
    const done = (await office('GET', `/v1/reconciliations/${w.id}`)).body;
    expect(done).toMatchObject({ status: 'done', attempts: 2 });
  });

  it("today's settle date may be asked for: the acquirer says it is not there yet", async () => {
    const w = await runDay(TODAY, 202);
    expect(w.status).toBe('waiting');
    expect(fileRequests(sim).at(-1)).toBe(mmdd(TODAY));
  });

  it('an answer whose signature fails says nothing: the run waits', async () => {
    const day = addDays(D, 4);
    setFileFault(sim, mmdd(day), 'badsig', 1);
    const w = await runDay(day, 202);
    expect(w.status).toBe('waiting');
    expect(w.problem.reason).toMatch(/unverifiable/);
  });

  it('a file whose lines do not add up to the RD report is refused and nothing is applied', async () => {
    const day = addDays(D, 5);
    const u = await attempt('approved', morningOf(day));
    setFileFault(sim, mmdd(day), 'totals');
    const r = await runDay(day);
    expect(r.status).toBe('refused');
    expect(r.problem.difference).toEqual({ count: -1, amountFen: -10_000 });
    expect(r.latest).toBe(false);
    expect(await items(r.id)).toEqual([]);
    expect((await payment(u.paymentId)).status).toBe('unknown');
    setFileFault(sim, mmdd(day), 'truncated');
    const tr = await runDay(day);
    expect(tr.status).toBe('refused');
    expect(JSON.stringify(tr.problem)).toMatch(/cannot be read|ZIP/);
    expect((await payment(u.paymentId)).status).toBe('unknown');
  });

  it('takes the file as application/zip, matching by terminal + trace + amount when the order id is unknown', async () => {
    const day = addDays(D, 6);
    const a = await approved(morningOf(day), 880);
    // The terminal's id as it reported it; 1.00 of this payment was refunded to the card (an overpaid order).
    await t.fdb.db.ds.query(
      "UPDATE payment SET terminal_id = '12345678', refund_state = 'done', refund_fen = 100 WHERE id = ?",
      [a.paymentId],
    );
    const p = await payment(a.paymentId);
    const zip = await streamToBuffer(
      writeReconZip({
        merId: MER_ID,
        settleDay: day,
        lines: [
          formatZmLine({
            amountFen: 880,
            rf: '',
            terminalId: '12345678',
            traceNo: p.terminal.traceNo,
            queryId: 'Q'.padEnd(21, '1'),
            merId: MER_ID,
            txnTime: '1010101010',
          }),
          formatZmLine({
            amountFen: 100,
            rf: 'R1',
            txnType: '04',
            origQueryId: p.queryId,
            queryId: 'R'.padEnd(21, '1'),
            merId: MER_ID,
            txnTime: '1010111111',
          }),
          formatZmLine({
            amountFen: 50,
            rf: 'R2',
            txnType: '31',
            origQueryId: 'NO-SUCH-SALE',
            queryId: 'R'.padEnd(21, '2'),
            merId: MER_ID,
            txnTime: '1010121212',
          }),
        ],
      }),
    );
    const { status, run } = await uploadZip(day, zip);
    expect(status).toBe(201);
    expect(run).toMatchObject({
      status: 'done',
      source: 'upload',
      counts: { matched: 2, acquirerOnly: 1 },
      totals: { count: 3, amountFen: 880 - 100 - 50 },
    });
    const all = await items(run.id);
    expect(all.find((i) => i.txnType === '01')).toMatchObject({
      class: 'matched',
      paymentId: a.paymentId,
      terminalId: '12345678',
    });
    expect(all.find((i) => i.txnType === '04')).toMatchObject({
      class: 'matched',
      paymentId: a.paymentId,
      ourAmountFen: 100,
      acquirerAmountFen: 100,
    });
    expect(all.find((i) => i.txnType === '31')).toMatchObject({ class: 'acquirer_only', paymentId: null });

    const bad = await uploadZip(day, Buffer.from('not a zip'));
    expect(bad.status).toBe(201);
    expect(bad.run.status).toBe('refused');
  });

  it('at the turn of the year a trade after 23:00 on 31 December belongs to 1 January of the next year', async () => {
    const upload = async (day: string, lines: Buffer[]) =>
      (await uploadZip(day, await streamToBuffer(writeReconZip({ merId: MER_ID, settleDay: day, lines })))).run;
    const nye = chinaAt('2025-12-31', '23:30:00');
    const settled = await attempt('approved', nye);
    const absent = await attempt('none', nye);
    const b = (await bank.get(settled.rf))!;
    expect(b.settleDate).toBe('0101');
    const dec31 = await upload('2025-12-31', []);
    expect(dec31).toMatchObject({ status: 'done', counts: { pendingCutoff: 0 } });
    const jan1 = await upload('2026-01-01', zmLinesOf([b]));
    expect(jan1.status).toBe('done');
    expect(await itemOf(jan1.id, settled.paymentId)).toMatchObject({
      class: 'acquirer_only',
      action: { kind: 'approve', state: 'applied' },
    });
    expect(await itemOf(jan1.id, absent.paymentId)).toMatchObject({
      class: 'pending_cutoff',
      settleDate: '2026-01-01',
    });
    // Approved by the file, it now carries the acquirer's 0101: a re-run still finds it in 1 January, not in another year.
    expect((await payment(settled.paymentId)).settleDate).toBe('0101');
    const again = await upload('2026-01-01', zmLinesOf([b]));
    expect(await itemOf(again.id, settled.paymentId)).toMatchObject({
      class: 'acquirer_only',
      action: { kind: 'approve', state: 'already' },
    });
  });

  it("matches refund lines to the returns capability's refund legs by their RF", async () => {
    const day = addDays(D, -1);
    const a = await approved(morningOf(day), 990);
    const p = await payment(a.paymentId);
    // The returns capability's table as its migration makes it (created here when that capability is not in this build).
    await t.fdb.db.ds
      .query(`CREATE TABLE IF NOT EXISTS refund_leg (id varchar(36) PRIMARY KEY, return_id varchar(36) NOT NULL, order_id varchar(36) NOT NULL,
      payment_id varchar(36) NOT NULL, seq int NOT NULL, method varchar(8) NOT NULL, amount_fen bigint NOT NULL, status varchar(16) NOT NULL, rf varchar(32),
      created_at bigint NOT NULL, updated_at bigint NOT NULL)`);
    for (const [id, amount, status, rf] of [
      ['00000000-0000-4000-8000-0000000000a1', 200, 'approved', `RL1${name}`],
      ['00000000-0000-4000-8000-0000000000a2', 150, 'unknown', `RL2${name}`],
    ] as const) {
      await t.fdb.db.ds.query(
        'INSERT INTO refund_leg (id, return_id, order_id, payment_id, seq, method, amount_fen, status, rf, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, 1, 1)',
        [id, id, a.orderId, a.paymentId, 'card', amount, status, rf],
      );
    }
    const zip = await streamToBuffer(
      writeReconZip({
        merId: MER_ID,
        settleDay: day,
        lines: [
          ...zmLinesOf([(await bank.get(a.rf))!]),
          formatZmLine({
            amountFen: 200,
            rf: `RL1${name}`,
            txnType: '04',
            origQueryId: p.queryId,
            queryId: 'L'.padEnd(21, '1'),
            merId: MER_ID,
          }),
          formatZmLine({
            amountFen: 150,
            rf: `RL2${name}`,
            txnType: '04',
            origQueryId: p.queryId,
            queryId: 'L'.padEnd(21, '2'),
            merId: MER_ID,
          }),
        ],
      }),
    );
    const { run } = await uploadZip(day, zip);
    expect(run).toMatchObject({ status: 'done', counts: { matched: 2, acquirerOnly: 1 } });
    const all = await items(run.id);
    expect(all.find((i) => i.rf === `RL1${name}`)).toMatchObject({
      class: 'matched',
      paymentId: a.paymentId,
      ourStatus: 'refund_approved',
      ourAmountFen: 200,
    });
    // The leg nobody could answer for is settled by the file: approved once, audited; a re-run classifies it alike.
    expect(all.find((i) => i.rf === `RL2${name}`)).toMatchObject({
      class: 'acquirer_only',
      ourStatus: 'refund_unknown',
      action: { kind: 'settle_refund', state: 'applied' },
    });
    const leg = async () =>
      (
        (await t.fdb.db.ds.query('SELECT status, reason FROM refund_leg WHERE id = ?', [
          '00000000-0000-4000-8000-0000000000a2',
        ])) as { status: string; reason: string | null }[]
      )[0];
    expect(await leg()).toMatchObject({ status: 'approved' });
    expect((await leg()).reason).toContain('对账');
    const again = (await (
      await fetch(`${t.url}/v1/reconciliations?settleDate=${day}`, {
        method: 'POST',
        body: zip,
        headers: { 'content-type': 'application/zip', authorization: `Bearer ${t.adminKey}` },
      })
    ).json()) as any;
    expect((await items(again.id)).find((i) => i.rf === `RL2${name}`)).toMatchObject({
      class: 'acquirer_only',
      ourStatus: 'refund_unknown',
      action: { kind: 'settle_refund', state: 'already' },
    });
    const audits = (await t.fdb.db.ds.query(
      "SELECT action FROM audit_log WHERE entity = 'refund_leg' AND entity_id = ?",
      ['00000000-0000-4000-8000-0000000000a2'],
    )) as unknown[];
    expect(audits).toHaveLength(1);
  });

  it('a run whose owner died is taken back: a download is fetched again, an upload asks for the file again', async () => {
    const day = addDays(D, 7);
    clock.set(morningOf(TODAY));
    const past = clock.now().getTime() - 1000;
    for (const [id, source] of [
      ['00000000-0000-4000-8000-000000000001', 'cron'],
      ['00000000-0000-4000-8000-000000000002', 'upload'],
    ]) {
      await t.fdb.db.ds.query(
        "INSERT INTO recon_run (id, settle_date, status, source, latest, created_by, created_at, updated_at, attempts, claim_until) VALUES (?, ?, 'running', ?, 0, 'test', ?, ?, 1, ?)",
        [id, day, source, past, past, past],
      );
    }
    const r = await recon.retryDue();
    expect(r).toMatchObject({ released: 2, attempted: 1 });
    expect((await office('GET', '/v1/reconciliations/00000000-0000-4000-8000-000000000001')).body).toMatchObject({
      status: 'done',
      attempts: 2,
      latest: true,
    });
    const up = (await office('GET', '/v1/reconciliations/00000000-0000-4000-8000-000000000002')).body;
    expect(up.status).toBe('refused');
    expect(up.problem.reason).toMatch(/upload the file again/);
  });

  it('a run that lost its claim while it worked adds no items and does not finish it: its new attempt owns it', async () => {
    const day = addDays(D, 9);
    const paid = await attempt('approved', chinaAt(day, '10:00:00'));
    const b = (await bank.get(paid.rf))!;
    const zip = await streamToBuffer(writeReconZip({ merId: MER_ID, settleDay: day, lines: zmLinesOf([b]) }));
    const svc = recon as unknown as { matchBatch: (...a: unknown[]) => Promise<void> };
    const match = svc.matchBatch;
    svc.matchBatch = async (...a: unknown[]) => {
      // What retryDue does meanwhile to an upload whose claim lapsed (its worker seemed dead).
      await t.fdb.db.ds.query("UPDATE recon_run SET status = 'refused', claim_until = NULL WHERE id = ?", [a[0]]);
      return match.apply(recon, a);
    };
    try {
      const { run } = await uploadZip(day, zip);
      expect(run.status).toBe('refused');
      expect(await items(run.id)).toEqual([]);
    } finally {
      svc.matchBatch = match;
    }
  });

  it('refuses bad input with a 4xx and changes nothing', async () => {
    expect((await office('POST', '/v1/reconciliations', { settleDate: '2026-02-30' })).status).toBe(400);
    expect((await office('POST', '/v1/reconciliations', {})).status).toBe(400);
    expect((await cashier('POST', '/v1/reconciliations', { settleDate: D })).status).toBe(403);
    expect((await office('GET', '/v1/reconciliations/nope')).status).toBe(400);
    expect((await office('GET', `/v1/reconciliations/${runD1.id}/items?class=bogus`)).status).toBe(400);
    expect(
      (await office('POST', '/v1/reconciliations/items/999999/resolve', { action: 'chase', note: 'x' })).status,
    ).toBe(404);
    expect((await office('POST', '/v1/reconciliations/items/1/resolve', { action: 'shrug', note: 'x' })).status).toBe(
      400,
    );
  });
});
