/**
 * The lane's server side (issue 13): receipts on the lane printer, shifts, barcodes, and the
 * routes the cashier screen needs. Wired by app.ts beside the core capabilities.
 */
import { RequestHandler, Router } from 'express';
import { rows } from '../db/db';
import { CoreContext } from '../extensions';
import { Printer } from '../printer/printer';
import { PrintQueue } from '../printer/print-queue';
import { printerRoutes } from '../printer/printer.routes';
import { ReceiptsService } from '../receipts/receipts.service';
import { receiptsRoutes } from '../receipts/receipts.routes';
import { ShiftsService } from '../shifts/shifts.service';
import { requireOpenShift, shiftsRoutes } from '../shifts/shifts.routes';
import { shiftReportDoc } from '../shifts/shift-report-doc';
import { barcodeRoutes } from '../inventory/barcodes';
import { laneRoutes } from './lane.routes';

export interface LaneOptions {
  merchantName: string;
  /** POS_SHIFTS=on: no new order or tender on a lane without an open shift. */
  shiftsRequired: boolean;
  printPollMs: number;
  printRetryMs: number;
  instanceId: string;
}

export const DEFAULT_MERCHANT_NAME = '示例便利店';

/** POS_MERCHANT_NAME, POS_SHIFTS, POS_PRINT_RETRY_MS. */
export function laneOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<LaneOptions> {
  const out: Partial<LaneOptions> = { shiftsRequired: env.POS_SHIFTS === 'on' };
  if (env.POS_SHIFTS && !['on', 'off'].includes(env.POS_SHIFTS))
    throw new Error(`POS_SHIFTS must be on or off, got "${env.POS_SHIFTS}"`);
  if (env.POS_MERCHANT_NAME) out.merchantName = env.POS_MERCHANT_NAME;
  if (env.POS_PRINT_RETRY_MS) {
    const v = Number(env.POS_PRINT_RETRY_MS);
    if (!Number.isInteger(v) || v < 100 || v > 600_000)
      throw new Error(`POS_PRINT_RETRY_MS must be 100–600000, got "${env.POS_PRINT_RETRY_MS}"`);
    out.printRetryMs = v;
  }
  return out;
}

export interface Lane {
  queue: PrintQueue;
  receipts: ReceiptsService;
  shifts: ShiftsService;
  options: LaneOptions;
  /** Mounted before the order routes (the POS_SHIFTS gate). */
  beforeOrders: RequestHandler;
  routers: Router[];
  close(): Promise<void>;
}

export function laneCapability(
  ctx: CoreContext,
  printers: Map<string, Printer>,
  options: Partial<LaneOptions> & { instanceId: string },
): Lane {
  const opts: LaneOptions = {
    merchantName: DEFAULT_MERCHANT_NAME,
    shiftsRequired: false,
    printPollMs: 500,
    printRetryMs: 2000,
    ...options,
  };
  const receipts = new ReceiptsService(ctx.db, { merchantName: opts.merchantName });
  let shifts: ShiftsService | null = null;
  const queue = new PrintQueue(
    ctx.db,
    printers,
    async (job) => {
      if (job.kind === 'z_report') return shiftReportDoc(await shifts!.zReport(job.shiftId!), opts.merchantName);
      return receipts.forOrder(job.orderId!, job.kind === 'reprint');
    },
    ctx.clock,
    ctx.log,
    { instanceId: opts.instanceId, pollMs: opts.printPollMs, retryMs: opts.printRetryMs, claimMs: 60_000 },
  );
  shifts = new ShiftsService(ctx.db, ctx.clock, queue);
  receipts.usePrintQueue(queue);

  // In the paying transaction: only the job row (no I/O); the drawer only when cash was taken.
  ctx.payments.onOrderPaid({
    appliesTo: (order) => printers.has(order.lane),
    statements: (order, now) => [
      queue.receiptStatement({ lane: order.lane, orderId: order.id, actor: 'system:receipt' }, now),
    ],
  });
  queue.start();
  ctx.metrics.collect(async () => {
    const waiting = await ctx.db.read((m) =>
      rows<{ lane: string; n: unknown }>(
        m,
        "SELECT lane, COUNT(*) AS n FROM print_job WHERE status IN ('queued', 'printing') GROUP BY lane",
      ),
    );
    const g = ctx.metrics.gauge(
      'pos_print_jobs_waiting',
      'Receipts and reports not printed yet, by lane (printer away or out of paper)',
    );
    for (const lane of new Set([...printers.keys(), ...waiting.map((w) => w.lane)]))
      g.set({ lane }, Number(waiting.find((w) => w.lane === lane)?.n ?? 0));
  });

  const gate = requireOpenShift(shifts);
  // The gate answers early; the money's own transactions hold the line against a close (shifts/shift-lock.ts).
  if (opts.shiftsRequired) ctx.payments.lockShifts();
  const lane = laneRoutes(ctx.payments, { shiftsRequired: opts.shiftsRequired });
  return {
    queue,
    receipts,
    shifts,
    options: opts,
    beforeOrders: (req, res, next) => (opts.shiftsRequired ? gate(req, res, next) : next()),
    routers: [
      barcodeRoutes(ctx.db),
      receiptsRoutes(receipts),
      printerRoutes(queue),
      shiftsRoutes(shifts, ctx.knownLane),
      lane,
    ],
    close: async () => {
      lane.endStreams();
      await queue.stop();
    },
  };
}
