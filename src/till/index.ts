import { CoreContext, Extension } from '../extensions';
import { TillService } from './till.service';
import { tillRoutes } from './till.routes';

/** The till: the cashier screen's reads (item look-up, basket quote) and cash with change. No tables of its own. */
export function tillExtension(ctx: CoreContext): Extension {
  return { name: 'till', router: tillRoutes(new TillService(ctx.db, ctx.orders, ctx.payments)) };
}
