import { CoreContext, Extension } from '../extensions';
import { LaneService } from './lane.service';
import { laneRoutes } from './lane.routes';

/** The cashier screen's reads (item look-up, basket quote) and cash with change. No tables of its own. */
export function laneExtension(ctx: CoreContext): Extension {
  return { name: 'lane', router: laneRoutes(new LaneService(ctx.db, ctx.orders, ctx.payments)) };
}
