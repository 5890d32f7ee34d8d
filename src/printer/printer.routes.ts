import { Router } from 'express';
import { allow, checkLane } from '../http/auth';
import { laneName, noQuery, pathParam } from '../http/validate';
import { PrintQueue } from './print-queue';

export function printerRoutes(queue: PrintQueue): Router {
  const r = Router();
  /** Every configured lane printer, for the back office. */
  r.get('/printers', allow('backoffice'), async (req, res) => {
    noQuery(req);
    res.json({
      items: await Promise.all(
        queue.lanes().map(async (lane) => {
          const [status, summary] = await Promise.all([queue.printerStatus(lane), queue.laneSummary(lane)]);
          return {
            lane,
            configured: status.configured,
            state: status.state,
            paperNearEnd: status.paperNearEnd,
            ...summary,
          };
        }),
      ),
    });
  });

  /** The lane printer's state now (DLE EOT) and what is waiting for it. */
  r.get('/printers/:lane', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    const lane = pathParam('lane', laneName, req.params.lane);
    checkLane(req, lane);
    const [status, summary] = await Promise.all([queue.printerStatus(lane), queue.laneSummary(lane)]);
    res.json({
      lane,
      configured: status.configured,
      state: status.state,
      paperNearEnd: status.paperNearEnd,
      ...summary,
    });
  });
  return r;
}
