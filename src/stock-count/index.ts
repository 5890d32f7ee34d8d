import type { EntityClass } from '../db/registry';
import { CoreContext, Extension } from '../extensions';
import { StockCountService } from './stock-count.service';
import { stockCountRoutes } from './stock-count.routes';

/** Stock counts (盘点). Tables only, no entities. */
export const stockCountEntities: EntityClass[] = [];

export function stockCountExtension(ctx: CoreContext): Extension {
  return { name: 'stock-count', router: stockCountRoutes(new StockCountService(ctx.db, ctx.inventory, ctx.clock)) };
}
