import type { EntityClass } from '../db/registry';
import { CoreContext, Extension } from '../extensions';
import { TicketingService } from './ticketing.service';
import { ticketingRoutes } from './ticketing.routes';

/** Ticketing: events, seats held as orders, tickets issued when the order is paid. Tables only, no entities. */
export const ticketingEntities: EntityClass[] = [];

export function ticketingExtension(ctx: CoreContext): Extension {
  const ticketing = new TicketingService(ctx.db, ctx.inventory, ctx.orders, ctx.clock);
  ticketing.observeBatches(ctx.metrics.batchObserver());
  const stats = ticketing.holdStats;
  if (stats)
    ctx.metrics.collect(async () => {
      const g = ctx.metrics.gauge(
        'pos_seat_hold_batches',
        'Seat-hold batches since start: all, read_only (every request refused, nothing written), unlocked (of those, decided by a plain read with no transaction); statements: round trips they took',
      );
      g.set({ kind: 'all' }, stats.batches);
      g.set({ kind: 'read_only' }, stats.readOnly);
      g.set({ kind: 'unlocked' }, stats.unlocked);
      g.set({ kind: 'statements' }, stats.statements);
    });
  ctx.payments.onOrderPaid({
    appliesTo: (order) => order.kind === 'seats' && !!order.eventId,
    run: (m, order, now) => ticketing.issueTickets(m, order, now),
  });
  return {
    name: 'ticketing',
    router: ticketingRoutes(ticketing, ctx.knownLane),
    service: ticketing,
    close: () => ticketing.idle(),
  };
}
