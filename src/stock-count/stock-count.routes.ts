import { Router, Request } from 'express';
import { once } from 'node:events';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { noQuery, parse, pathParam, skuCode } from '../http/validate';
import { DomainError } from '../shared/errors';
import { CountEntry, MAX_COUNTED, readCountCsv, UploadTooLarge } from './csv';
import { StockCountService } from './stock-count.service';

const MAX_CSV_BYTES = 64 * 1024 * 1024;
const uuid = z.string().uuid('not an id');
const openBody = z.object({ skus: z.array(skuCode).min(1, 'at least one SKU').max(100_000).optional() }).strict();
const jsonLines = z
  .array(
    z
      .object({ sku: skuCode, counted: z.number().int('a whole number').min(0, 'not negative').max(MAX_COUNTED) })
      .strict(),
  )
  .min(1, 'at least one line')
  .max(100_000, 'at most 100 000 lines');
const approveBody = z.object({ acceptMoved: z.boolean().optional() }).strict();
const pageQuery = z
  .object({ after: skuCode.optional(), limit: z.coerce.number().int().min(1).max(5000).optional() })
  .strict();
const countId = (v: unknown) => pathParam('countId', uuid, v);

const isCsv = (req: Request) => /^text\/csv\b/i.test(req.headers['content-type'] ?? '');

export function stockCountRoutes(counts: StockCountService): Router {
  const r = Router();

  r.post('/stock-counts', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const body = parse(openBody, req.body ?? {});
    res.status(201).json(await counts.open(body.skus, actorOf(req)));
  });

  r.put('/stock-counts/:id/lines', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const id = countId(req.params.id);
    if (isCsv(req)) {
      await counts.exists(id);
      let parsed;
      try {
        parsed = await readCountCsv(req, MAX_CSV_BYTES);
      } catch (err) {
        if (err instanceof UploadTooLarge) {
          req.resume();
          throw new DomainError(413, 'payload_too_large', err.message);
        }
        throw err;
      }
      res.json(await counts.record(id, parsed.entries, parsed.errors, actorOf(req)));
      return;
    }
    const lines = Array.isArray(req.body)
      ? parse(jsonLines, req.body)
      : parse(z.object({ lines: jsonLines }).strict(), req.body).lines;
    const entries: CountEntry[] = lines.map((l, i) => ({ line: i + 1, sku: l.sku, counted: l.counted }));
    res.json(await counts.record(id, entries, [], actorOf(req)));
  });

  r.get('/stock-counts/:id', allow('backoffice'), async (req, res) => {
    const q = parse(pageQuery, req.query, 'query');
    res.json(await counts.view(countId(req.params.id), { after: q.after, limit: q.limit ?? 1000 }));
  });

  r.get('/stock-counts/:id/export.csv', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const id = countId(req.params.id);
    await counts.exists(id);
    res
      .status(200)
      .type('text/csv; charset=utf-8')
      .setHeader('content-disposition', `attachment; filename="stock-count-${id}.csv"`);
    res.write(
      'sku,expected_at_open,expected,counted,expected_at_count,variance,held_by_open_payments,write_off,variance_value_fen,moved_since_count,posted_delta\n',
    );
    const totals = { shrinkageFen: 0, heldFen: 0, surplusFen: 0 };
    for await (const l of counts.lines(id)) {
      if (l.adjustment !== null && l.adjustment > 0) totals.surplusFen += l.adjustment * l.priceFen;
      if (l.adjustment !== null && l.adjustment < 0) totals.shrinkageFen += -l.adjustment * l.priceFen;
      totals.heldFen += l.heldByOpenPayments * l.priceFen;
      const row = [
        l.sku,
        l.expectedAtOpen,
        l.expected,
        l.counted ?? '',
        l.expectedAtCount ?? '',
        l.variance ?? '',
        l.heldByOpenPayments,
        l.writeOff ?? '',
        l.varianceValueFen ?? '',
        l.movedSinceCount ? 'yes' : 'no',
        l.postedDelta ?? '',
      ].join(',');
      if (!res.write(`${row}\n`)) await once(res, 'drain');
    }
    res.end(
      `# totals,shrinkage_fen=${totals.shrinkageFen},held_by_open_payments_fen=${totals.heldFen},surplus_fen=${totals.surplusFen}\n`,
    );
  });

  r.post('/stock-counts/:id/approve', allow('backoffice'), async (req, res) => {
    noQuery(req);
    const body = parse(approveBody, req.body ?? {});
    res.json(await counts.approve(countId(req.params.id), body.acceptMoved ?? false, actorOf(req)));
  });

  r.post('/stock-counts/:id/cancel', allow('backoffice'), async (req, res) => {
    noQuery(req);
    parse(z.object({}).strict(), req.body ?? {}); // a cancel takes no fields: one sent is a mistake to name, not to ignore
    res.json(await counts.cancel(countId(req.params.id), actorOf(req)));
  });

  return r;
}
