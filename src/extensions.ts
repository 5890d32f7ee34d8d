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
import { reconciliationExtension } from './reconciliation';
import { returnsExtension } from './returns';
import { tillExtension } from './till';
import { reportsExtension } from './reports';
import type { Terminal } from './terminal/terminal';
import type { Acquirer } from './acquirer/acquirer';
import type { Sweeper } from './sweeper/sweeper.service';
import type { TerminalCardDriver } from './payments/card-flow';

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
  /** The lanes' terminals, the acquirer and the sweeper, for capabilities that move money back (returns). */
  terminals?: Map<string, Terminal>;
  /** The acquirer gateway, when there is one (reconciliation downloads its file; returns ask it about refund legs). */
  acquirer?: Acquirer | null;
  sweeper?: Sweeper;
  /** Which lanes this instance drives (lane leases). */
  cards?: TerminalCardDriver;
  /** Whether capabilities may start their own timers (off in tests that drive them by hand). */
  schedule?: boolean;
}

export interface Extension {
  name: string;
  router: Router;
  /** The capability's service, for tools and tests that drive it directly. */
  service?: unknown;
  /** Stops the capability's timers. */
  close?: () => Promise<void>;
}

/** Capabilities mounted under /v1 beside the core routes. */
export async function extensionRoutes(ctx: CoreContext): Promise<Extension[]> {
  return [
    ticketingExtension(ctx),
    stockCountExtension(ctx),
    reconciliationExtension(ctx),
    returnsExtension(ctx),
    tillExtension(ctx),
    reportsExtension(ctx),
  ].filter((e): e is Extension => e !== null);
}
