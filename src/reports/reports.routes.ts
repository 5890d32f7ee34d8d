import { Router } from 'express';
import { z } from 'zod';
import { allow } from '../http/auth';
import { noQuery, parse, pathParam, skuCode } from '../http/validate';
import { ReportsService } from './reports.service';

const limit = (max: number) => z.coerce.number().int().min(1).max(max).optional();
const idCursor = z.coerce.number().int().positive().optional();
export const catalogQuery = z
  .object({ q: z.string().trim().max(64).optional(), cursor: skuCode.optional(), limit: limit(500) })
  .strict();
export const movementsQuery = z.object({ cursor: idCursor, limit: limit(500) }).strict();
export const historyQuery = z.object({ points: limit(2000) }).strict();
export const auditQuery = z
  .object({
    entityId: z.string().trim().min(1).max(64).optional(),
    actor: z.string().trim().min(1).max(64).optional(),
    entity: z.string().trim().min(1).max(32).optional(),
    cursor: idCursor,
    limit: limit(500),
  })
  .strict();
export const daysQuery = z.object({ days: z.coerce.number().int().min(1).max(366).optional() }).strict();
export const pageQuery = z.object({ cursor: idCursor, limit: limit(200) }).strict();
const eventId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$/, '1–24 letters, digits, _ -');

export function reportsRoutes(reports: ReportsService): Router {
  const r = Router();
  const office = allow('backoffice');

  r.get('/reports/skus', office, async (req, res) => {
    const q = parse(catalogQuery, req.query, 'query');
    res.json(await reports.catalog(q.q || undefined, q.cursor, q.limit ?? 50));
  });

  r.get('/reports/skus/:sku/movements', office, async (req, res) => {
    const q = parse(movementsQuery, req.query, 'query');
    res.json(await reports.movements(pathParam('sku', skuCode, req.params.sku), q.cursor, q.limit ?? 50));
  });

  r.get('/reports/skus/:sku/on-hand', office, async (req, res) => {
    const q = parse(historyQuery, req.query, 'query');
    res.json({ points: await reports.onHandHistory(pathParam('sku', skuCode, req.params.sku), q.points ?? 500) });
  });

  r.get('/reports/skus/:sku/holders', office, async (req, res) => {
    noQuery(req);
    res.json({ items: await reports.holders(pathParam('sku', skuCode, req.params.sku), 200) });
  });

  r.get('/reports/audit', office, async (req, res) => {
    const q = parse(auditQuery, req.query, 'query');
    res.json(await reports.audit({ entityId: q.entityId, actor: q.actor, entity: q.entity }, q.cursor, q.limit ?? 50));
  });

  r.get('/reports/held-ageing', office, async (req, res) => {
    noQuery(req);
    res.json({ statuses: await reports.heldAgeing() });
  });

  r.get('/reports/sales-by-tender', office, async (req, res) => {
    res.json({ days: await reports.salesByTender(parse(daysQuery, req.query, 'query').days ?? 14) });
  });

  r.get('/reports/stock-counts', office, async (req, res) => {
    const q = parse(pageQuery, req.query, 'query');
    res.json(await reports.stockCounts(q.cursor, q.limit ?? 20));
  });

  r.get('/reports/events', office, async (req, res) => {
    noQuery(req);
    res.json({ items: await reports.events() });
  });

  r.get('/reports/events/:id/holds', office, async (req, res) => {
    noQuery(req);
    res.json({ items: await reports.seatHolds(pathParam('eventId', eventId, req.params.id)) });
  });

  return r;
}
