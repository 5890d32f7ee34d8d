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

/** What a capability built on the core (ticketing, stock counts) gets to work with. */
export interface CoreContext {
  db: Db;
  clock: Clock;
  log: Logger;
  inventory: InventoryService;
  orders: OrdersService;
  payments: PaymentsService;
  metrics: Metrics;
  /** Whether orders may be rung up on this lane (a terminal or a POS_LANES cash lane). */
  knownLane: (lane: string) => boolean;
}

export interface Extension {
  name: string;
  router: Router;
}

/** Capabilities mounted under /v1 beside the core routes. */
export async function extensionRoutes(ctx: CoreContext): Promise<Extension[]> {
  return [ticketingExtension(ctx), stockCountExtension(ctx)].filter((e): e is Extension => e !== null);
}
