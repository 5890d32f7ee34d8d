import cron, { ScheduledTask } from 'node-cron';
import { CoreContext, Extension } from '../extensions';
import { HttpAcquirer } from '../acquirer/acp-client';
import { AcpFileClient } from '../acquirer/acp-file';
import { ReconciliationService, RECON_ACTOR } from './reconciliation.service';
import { reconciliationRoutes } from './reconciliation.routes';

/**
 * RECON_CRON (default `0 10 * * *`, China time): the daily run for the previous settle day.
 * RECON_RETRY_CRON (default every 10 minutes): waiting runs that are due, abandoned runs, due actions.
 */
export function reconciliationExtension(ctx: CoreContext, env: NodeJS.ProcessEnv = process.env): Extension {
  const files = ctx.acquirer instanceof HttpAcquirer ? new AcpFileClient(ctx.acquirer.opts, ctx.clock) : null;
  const recon = new ReconciliationService(ctx.db, ctx.payments, files, ctx.clock, { log: ctx.log });
  const tasks: ScheduledTask[] = [];
  if (ctx.schedule) {
    const daily = env.RECON_CRON || '0 10 * * *';
    const retry = env.RECON_RETRY_CRON || '*/10 * * * *';
    if (!cron.validate(daily)) throw new Error(`RECON_CRON is not a cron expression: "${daily}"`);
    if (!cron.validate(retry)) throw new Error(`RECON_RETRY_CRON is not a cron expression: "${retry}"`);
    if (files) {
      tasks.push(
        cron.schedule(
          daily,
          async () => {
            const day = recon.previousSettleDay();
            try {
              const run = await recon.requestDownload(day, RECON_ACTOR, 'cron');
              ctx.log.info('reconciliation', { settleDate: day, status: run.status, counts: run.counts });
            } catch (err) {
              ctx.log.error('reconciliation failed', { settleDate: day, err: String(err) });
            }
          },
          { timezone: 'Asia/Shanghai', noOverlap: true, name: 'reconciliation' },
        ),
      );
    }
    tasks.push(
      cron.schedule(
        retry,
        async () => {
          try {
            const r = await recon.retryDue();
            if (r.attempted || r.released || r.actions) ctx.log.info('reconciliation retry', { ...r });
          } catch (err) {
            ctx.log.error('reconciliation retry failed', { err: String(err) });
          }
        },
        { noOverlap: true, name: 'reconciliation-retry' },
      ),
    );
  }
  return {
    name: 'reconciliation',
    router: reconciliationRoutes(recon),
    service: recon,
    close: async () => {
      for (const t of tasks) await t.stop();
    },
  };
}
