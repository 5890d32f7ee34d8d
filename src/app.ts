import express, { Express } from 'express';
import './capabilities'; // hands every capability's entities to the data source before any is made
import { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import cron, { ScheduledTask } from 'node-cron';
import { Db } from './db/db';
import { Config } from './config';
import { Clock, systemClock } from './shared/clock';
import { Logger, jsonLogger } from './shared/logger';
import { Terminal } from './terminal/terminal';
import { Acquirer } from './acquirer/acquirer';
import { AuthService } from './auth/auth.service';
import { authRoutes } from './auth/auth.routes';
import { InventoryService } from './inventory/inventory.service';
import { inventoryRoutes } from './inventory/inventory.routes';
import { OrdersService } from './orders/orders.service';
import { ordersRoutes } from './orders/orders.routes';
import { PaymentsService } from './payments/payments.service';
import { paymentsRoutes } from './payments/payments.routes';
import { TerminalCardDriver } from './payments/card-flow';
import { LaneLeases } from './payments/lane-lease';
import { Sweeper } from './sweeper/sweeper.service';
import { sweeperRoutes } from './sweeper/sweeper.routes';
import { dispatch } from './http/gate';
import { webPages } from './http/static';
import { authenticate } from './http/auth';
import { errorHandler, notFoundRoute, requestId } from './http/errors';
import { jsonBody } from './http/body';
import { idempotency } from './http/idempotency';
import { batchSettingsFromEnv } from './orders/order-batcher';
import { Metrics } from './http/metrics';
import { serverFor } from './http/server';
import { hotPath } from './http/hot-path';
import { rows } from './db/db';
import { extensionRoutes, Extension } from './extensions';
import { Printer } from './printer/printer';
import { Lane, LaneOptions, laneCapability } from './lane';

export interface AppDeps {
  config: Config;
  db: Db;
  terminals?: Map<string, Terminal>;
  acquirer?: Acquirer | null;
  clock?: Clock;
  log?: Logger;
  /** Off in tests that sweep by hand. */
  schedule?: boolean;
  /** Lane lease timing (default: 30 s lease renewed every 10 s). */
  laneLease?: { leaseMs: number; renewMs: number };
  /** Receipt printers by lane (POS_PRINTERS). */
  printers?: Map<string, Printer>;
  lane?: Partial<LaneOptions>;
  /**
   * prom-client's process metrics on /metrics (heap, GC pauses by kind, event-loop delay, CPU): on in
   * `serve`, off in tests, which build many apps in one process.
   */
  processMetrics?: boolean;
}

export interface App {
  http: Express;
  db: Db;
  clock: Clock;
  auth: AuthService;
  inventory: InventoryService;
  orders: OrdersService;
  payments: PaymentsService;
  sweeper: Sweeper;
  cards: TerminalCardDriver;
  leases: LaneLeases;
  terminals: Map<string, Terminal>;
  metrics: Metrics;
  extensions: Extension[];
  lane: Lane;
  /** The hot path (http/hot-path.ts) when it is on: how many requests it took. */
  hotPath: { taken(): number } | null;
  listen(port: number, host: string): Promise<{ server: Server; url: string }>;
  close(): Promise<void>;
}

/** Wires the capabilities together. Adapters (terminals, acquirer, clock) come in from outside. */
export async function createApp(deps: AppDeps): Promise<App> {
  const { config, db } = deps;
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? jsonLogger();
  const terminals = deps.terminals ?? new Map<string, Terminal>();
  const metrics = new Metrics({ processMetrics: deps.processMetrics ?? false });

  const auth = new AuthService(db, clock);
  const inventory = new InventoryService(db, clock);
  const orders = new OrdersService(db, inventory, clock, config.orderHoldSeconds, config.cashRounding ?? 'off');
  const payments = new PaymentsService(db, inventory, orders, clock);
  // One instance drives a lane at a time: the lease holder. Another configured for the same lane waits for it.
  const leases = new LaneLeases(db, clock, log, [...terminals.keys()], {
    instanceId: config.instanceId,
    leaseMs: 30_000,
    renewMs: 10_000,
    ...deps.laneLease,
  });
  const cards = new TerminalCardDriver(terminals, payments, log, leases);
  orders.observeBatches(metrics.batchObserver());
  payments.observeBatches(metrics.batchObserver());
  payments.useCardDriver(cards);
  const sweeper = new Sweeper(
    db,
    payments,
    orders,
    terminals,
    cards,
    deps.acquirer ?? null,
    clock,
    log,
    metrics,
    {
      instanceId: config.instanceId,
      suspenseAfterMs: config.suspenseAfterSeconds * 1000,
      reversalGraceMs: config.reversalGraceSeconds * 1000,
      claimMs: 5 * 60_000,
      batchSize: config.sweepBatchSize ?? 200,
      concurrency: config.sweepConcurrency,
    },
    leases,
  );
  // A lane may take orders if it has a terminal or is a cash lane (POS_LANES): a typo is refused at the
  // order, not discovered at the card tender.
  const knownLane = (lane: string) => terminals.has(lane) || config.cashLanes.includes(lane);
  const ctx = {
    db,
    clock,
    log,
    inventory,
    orders,
    payments,
    metrics,
    knownLane,
    terminals,
    acquirer: deps.acquirer ?? null,
    sweeper,
    cards,
    schedule: deps.schedule !== false,
  };
  const extensions = await extensionRoutes(ctx);
  const lane = laneCapability(ctx, deps.printers ?? new Map(), { instanceId: config.instanceId, ...deps.lane });

  if (config.adminKey) await auth.bootstrapAdmin(config.adminKey);
  // Only once a lane's lease is won is what it left `pending` ours to call unknown (never another live instance's in-flight payments).
  leases.onWon(async (lanes) => {
    const recovered = await payments.recoverInterrupted(lanes, (id) => cards.isInFlight(id));
    if (recovered)
      log.warn('card attempts left pending by a previous run are now unknown', { count: recovered, lanes });
  });
  await leases.tick();
  const waiting = [...terminals.keys()].filter((l) => !leases.holds(l));
  if (waiting.length) log.warn('another instance drives these lanes; waiting for their leases', { lanes: waiting });
  leases.start();

  metrics.collect(async () => {
    const counts = await db.read((m) =>
      rows<{ status: string; n: unknown }>(
        m,
        "SELECT status, COUNT(*) AS n FROM payment WHERE status IN ('pending', 'unknown', 'suspense', 'disputed') GROUP BY status",
      ),
    );
    const g = metrics.gauge(
      'pos_payments_held',
      'Card attempts whose outcome is not confirmed (disputed: waiting for a person), by status',
      { aggregator: 'max' }, // read from the one database: every worker sees the same count
    );
    for (const s of ['pending', 'unknown', 'suspense', 'disputed'])
      g.set({ status: s }, Number(counts.find((c) => c.status === s)?.n ?? 0));
  });

  const http = express();
  http.disable('x-powered-by');
  http.set('etag', false);
  const keys = idempotency(db, {
    leaseMs: config.idempotencyLeaseMs,
    batch: batchSettingsFromEnv(db.kind),
    observe: metrics.batchObserver(),
  });
  // The app, in the order it is mounted; the hot path below runs the same parts in the same order.
  const front = [metrics.requestTimer(), requestId, jsonBody()];
  const within = [authenticate(auth), keys];
  // Each capability's router only sees the paths it has routes for, picked by the first path segment in
  // one layer (http/gate.ts); the order here is the order they are tried in.
  const dispatcher = dispatch([
    authRoutes(auth),
    inventoryRoutes(inventory),
    lane.beforeOrders,
    ordersRoutes(orders, knownLane),
    paymentsRoutes(payments),
    sweeperRoutes(sweeper),
    ...extensions.map((e) => e.router),
    ...lane.routers,
  ]);
  const service = express.Router();
  service.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  service.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.render());
  });
  const tail = [service, webPages(), notFoundRoute];
  const errors = errorHandler(log);
  for (const f of front) http.use(f);
  const v1 = express.Router();
  for (const f of within) v1.use(f);
  v1.use(dispatcher);
  http.use('/v1', v1);
  for (const f of tail) http.use(f);
  http.use(errors);
  // The busiest routes skip express's routing (http/hot-path.ts); POS_HOT_PATH=off sends them through express too.
  const hot =
    config.hotPath !== false
      ? hotPath({ front, mount: '/v1', within, dispatcher, tail, errors }, [
          { method: 'POST', path: '/events/:id/holds' },
          { method: 'POST', path: '/orders' },
          { method: 'POST', path: '/orders/:id/payments' },
        ])
      : undefined;

  let task: ScheduledTask | null = null;
  if (deps.schedule !== false) {
    task = cron.schedule(
      config.sweepCron,
      async () => {
        try {
          const r = await sweeper.sweep();
          if (r.queried || r.expired || r.refunds) log.info('sweep', { ...r });
        } catch (err) {
          log.error('sweep failed', { err: String(err) });
        }
      },
      { noOverlap: true, name: 'sweeper' },
    );
  }

  let server: Server | null = null;
  return {
    http,
    db,
    clock,
    auth,
    inventory,
    orders,
    payments,
    sweeper,
    cards,
    leases,
    terminals,
    metrics,
    extensions,
    lane,
    hotPath: hot ?? null,
    listen: (port, host) =>
      new Promise((resolve) => {
        server = serverFor(http, hot).listen(port, host, () => {
          const a = server!.address() as AddressInfo;
          resolve({ server: server!, url: `http://${host}:${a.port}` });
        });
      }),
    close: async () => {
      await task?.stop();
      await lane.close(); // first: it ends the open event streams, which would keep the server from closing
      for (const e of extensions) await e.close?.();
      if (server) await new Promise((r) => server!.close(() => r(undefined)));
      await keys.idle();
      await sweeper.idle();
      await orders.idle();
      await payments.idle();
      await leases.stop();
      for (const t of terminals.values()) await t.close().catch(() => undefined);
    },
  };
}
