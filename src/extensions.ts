import type { Router } from 'express';
import { Db } from './db/db';
import { Clock } from './shared/clock';
import { Logger } from './shared/logger';
import { InventoryService } from './inventory/inventory.service';
import { OrdersService } from './orders/orders.service';
import { PaymentsService } from './payments/payments.service';
import { Metrics } from './http/metrics';
import { ticketingExtension } from './ticketing';
import { stockCountExtension } from './stock-count';
import { returnsExtension } from './returns';
import type { Terminal } from './terminal/terminal';
import type { Acquirer } from './acquirer/acquirer';
import type { Sweeper } from './sweeper/sweeper.service';

/** What a capability built on the core (ticketing, stock counts) gets to work with. */
export interface CoreContext {
  db: Db;
  clock: Clock;
  log: Logger;
  inventory: InventoryService;
  orders: OrdersService;
  payments: PaymentsService;
  metrics: Metrics;
  /** The lanes' terminals, the acquirer and the sweeper, for capabilities that move money back (returns). */
  terminals?: Map<string, Terminal>;
  acquirer?: Acquirer | null;
  sweeper?: Sweeper;
}

export interface Extension {
  name: string;
  router: Router;
}

/** Capabilities mounted under /v1 beside the core routes. */
export async function extensionRoutes(ctx: CoreContext): Promise<Extension[]> {
  return [ticketingExtension(ctx), stockCountExtension(ctx), returnsExtension(ctx)].filter((e): e is Extension => e !== null);
}
