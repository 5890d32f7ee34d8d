import { CoreContext, Extension } from '../extensions';
import { ReportsService } from './reports.service';
import { reportsRoutes } from './reports.routes';

/** Read-only back-office views (ledger, holders, audit, ageing, sales by tender), paged on the server. */
export function reportsExtension(ctx: CoreContext): Extension {
  return { name: 'reports', router: reportsRoutes(new ReportsService(ctx.db, ctx.clock)) };
}
