import type { EntityClass } from '../db/registry';
import { CoreContext, Extension } from '../extensions';
import { TicketingService } from './ticketing.service';
import { ticketingRoutes } from './ticketing.routes';

/** Ticketing: events, seats held as orders, tickets issued when the order is paid. Tables only, no entities. */
export const ticketingEntities: EntityClass[] = [];

export function ticketingExtension(ctx: CoreContext): Extension {
  const ticketing = new TicketingService(ctx.db, ctx.inventory, ctx.orders, ctx.clock);
  ctx.payments.onOrderPaid((m, order, now) => ticketing.issueTickets(m, order, now));
  return { name: 'ticketing', router: ticketingRoutes(ticketing, ctx.knownLane) };
}
