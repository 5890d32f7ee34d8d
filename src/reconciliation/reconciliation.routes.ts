import { Router, Request } from 'express';
import { once } from 'node:events';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { noQuery, parse, pathParam } from '../http/validate';
import { RECON_CLASSES, ReconciliationService } from './reconciliation.service';
import { isSettleDay } from './settle-day';

const settleDate = z.string().refine(isSettleDay, 'a settle date is YYYY-MM-DD');
const runBody = z.object({ settleDate }).strict();
const uploadQuery = z.object({ settleDate }).strict();
const listQuery = z
  .object({ settleDate: settleDate.optional(), limit: z.coerce.number().int().min(1).max(1000).optional() })
  .strict();
const runId = z.string().uuid('not a reconciliation id');
const itemId = z.coerce.number().int().positive('not an item id');
const itemsQuery = z
  .object({
    class: z.enum(RECON_CLASSES as [string, ...string[]]).optional(),
    after: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(5000).optional(),
    format: z.enum(['json', 'csv']).optional(),
  })
  .strict();
const resolveBody = z
  .object({
    action: z.enum(['accept_acquirer', 'accept_ours', 'chase']),
    note: z.string().trim().min(1, 'say why').max(2000),
  })
  .strict();

const isZip = (req: Request) => /^application\/(zip|x-zip-compressed)\b/i.test(req.headers['content-type'] ?? '');
const CSV_COLUMNS = [
  'id',
  'class',
  'rf',
  'paymentId',
  'ourStatus',
  'ourAmountFen',
  'acquirerAmountFen',
  'txnType',
  'queryId',
  'traceNo',
  'terminalId',
  'settleDate',
  'action',
  'resolution',
  'note',
] as const;
const csvCell = (v: unknown) => {
  const s = v == null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function reconciliationRoutes(recon: ReconciliationService): Router {
  const r = Router();

  // JSON {settleDate}: download from the acquirer; application/zip (?settleDate=): the file as the store got it.
  r.post('/reconciliations', allow('backoffice'), async (req, res) => {
    let run;
    if (isZip(req)) {
      run = await recon.upload(parse(uploadQuery, req.query, 'query').settleDate, req, actorOf(req));
    } else {
      noQuery(req);
      run = await recon.requestDownload(parse(runBody, req.body).settleDate, actorOf(req));
    }
    res.status(run.status === 'waiting' ? 202 : 201).json(run);
  });

  r.get('/reconciliations', allow('backoffice'), async (req, res) => {
    const q = parse(listQuery, req.query, 'query');
    res.json({ runs: await recon.list(q.settleDate, q.limit ?? 100) });
  });

  r.get('/reconciliations/:id', allow('backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await recon.run(pathParam('id', runId, req.params.id)));
  });

  r.get('/reconciliations/:id/items', allow('backoffice'), async (req, res) => {
    const id = pathParam('id', runId, req.params.id);
    const q = parse(itemsQuery, req.query, 'query');
    const cls = q.class as (typeof RECON_CLASSES)[number] | undefined;
    if (q.format !== 'csv') {
      res.json(await recon.items(id, { class: cls, after: q.after, limit: q.limit ?? 500 }));
      return;
    }
    let page = await recon.items(id, { class: cls, after: q.after, limit: 5000 });
    res
      .status(200)
      .type('text/csv; charset=utf-8')
      .setHeader('content-disposition', `attachment; filename="reconciliation-${id}.csv"`);
    res.write(`${CSV_COLUMNS.join(',')}\n`);
    for (;;) {
      for (const it of page.items) {
        const row = {
          ...it,
          action: it.action ? `${it.action.kind}:${it.action.state}` : '',
          resolution: it.resolution ? `${it.resolution.action}: ${it.resolution.note ?? ''}` : '',
        };
        if (!res.write(`${CSV_COLUMNS.map((c) => csvCell(row[c])).join(',')}\n`)) await once(res, 'drain');
      }
      if (page.next === null) break;
      page = await recon.items(id, { class: cls, after: page.next, limit: 5000 });
    }
    res.end();
  });

  r.post('/reconciliations/items/:id/resolve', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const body = parse(resolveBody, req.body);
    res.json(await recon.resolve(pathParam('id', itemId, req.params.id), body.action, body.note, actorOf(req)));
  });

  return r;
}
