import express, { Express } from 'express';
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
import { Sweeper } from './sweeper/sweeper.service';
import { sweeperRoutes } from './sweeper/sweeper.routes';
import { authenticate } from './http/auth';
import { errorHandler, notFoundRoute } from './http/errors';
import { idempotency } from './http/idempotency';
import { Metrics } from './http/metrics';
import { rows } from './db/db';
import { extensionRoutes, Extension } from './extensions';

export interface AppDeps {
  config: Config;
  db: Db;
  terminals?: Map<string, Terminal>;
  acquirer?: Acquirer | null;
  clock?: Clock;
  log?: Logger;
  /** Off in tests that sweep by hand. */
  schedule?: boolean;
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
  terminals: Map<string, Terminal>;
  metrics: Metrics;
  extensions: Extension[];
  listen(port: number, host: string): Promise<{ server: Server; url: string }>;
  close(): Promise<void>;
}

/** Wires the capabilities together. Adapters (terminals, acquirer, clock) come in from outside. */
export async function createApp(deps: AppDeps): Promise<App> {
  const { config, db } = deps;
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? jsonLogger();
  const terminals = deps.terminals ?? new Map<string, Terminal>();
  const metrics = new Metrics();

  const auth = new AuthService(db, clock);
  const inventory = new InventoryService(db, clock);
  const orders = new OrdersService(db, inventory, clock, config.orderHoldSeconds, config.cashRounding ?? 'off');
  const payments = new PaymentsService(db, inventory, orders, clock);
  orders.observeBatches(metrics.batchObserver());
  payments.observeBatches(metrics.batchObserver());
  const cards = new TerminalCardDriver(terminals, payments, log);
  payments.useCardDriver(cards);
  const sweeper = new Sweeper(db, payments, orders, terminals, cards, deps.acquirer ?? null, clock, log, metrics, {
    instanceId: config.instanceId,
    suspenseAfterMs: config.suspenseAfterSeconds * 1000,
    reversalGraceMs: config.reversalGraceSeconds * 1000,
    claimMs: 5 * 60_000,
    batchSize: 200,
    concurrency: 16,
  });
  const ctx = { db, clock, log, inventory, orders, payments, metrics, terminals, acquirer: deps.acquirer ?? null, sweeper };
  const extensions = await extensionRoutes(ctx);

  if (config.adminKey) await auth.bootstrapAdmin(config.adminKey);
  const recovered = await payments.recoverInterrupted([...terminals.keys()]);
  if (recovered) log.warn('card attempts left pending by a previous run are now unknown', { count: recovered });

  metrics.collect(async () => {
    const counts = await db.read((m) => rows<{ status: string; n: unknown }>(m, "SELECT status, COUNT(*) AS n FROM payment WHERE status IN ('pending', 'unknown', 'suspense') GROUP BY status"));
    const g = metrics.gauge('pos_payments_held', 'Card attempts whose outcome is not confirmed, by status');
    for (const s of ['pending', 'unknown', 'suspense']) g.set({ status: s }, Number(counts.find((c) => c.status === s)?.n ?? 0));
  });

  const http = express();
  http.disable('x-powered-by');
  http.set('etag', false);
  http.use(metrics.requestTimer());
  http.use(express.json({ limit: '256kb' }));
  http.get('/healthz', (_req, res) => { res.json({ ok: true }); });
  http.get('/metrics', async (_req, res) => { res.type(metrics.contentType).send(await metrics.render()); });
  const v1 = express.Router();
  v1.use(authenticate(auth));
  v1.use(idempotency(db));
  v1.use(authRoutes(auth));
  v1.use(inventoryRoutes(inventory));
  v1.use(ordersRoutes(orders));
  v1.use(paymentsRoutes(payments));
  v1.use(sweeperRoutes(sweeper));
  for (const e of extensions) v1.use(e.router);
  http.use('/v1', v1);
  http.use(notFoundRoute);
  http.use(errorHandler(log));

  let task: ScheduledTask | null = null;
  if (deps.schedule !== false) {
    task = cron.schedule(config.sweepCron, async () => {
      try {
        const r = await sweeper.sweep();
        if (r.queried || r.expired || r.refunds) log.info('sweep', { ...r });
      } catch (err) {
        log.error('sweep failed', { err: String(err) });
      }
    }, { noOverlap: true, name: 'sweeper' });
  }

  let server: Server | null = null;
  return {
    http, db, clock, auth, inventory, orders, payments, sweeper, cards, terminals, metrics, extensions,
    listen: (port, host) => new Promise((resolve) => {
      server = http.listen(port, host, () => {
        const a = server!.address() as AddressInfo;
        resolve({ server: server!, url: `http://${host}:${a.port}` });
      });
    }),
    close: async () => {
      await task?.stop();
      if (server) await new Promise((r) => server!.close(() => r(undefined)));
      await sweeper.idle();
      await orders.idle();
      await payments.idle();
      for (const t of terminals.values()) await t.close().catch(() => undefined);
    },
  };
}
