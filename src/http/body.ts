import express, { RequestHandler } from 'express';
import { DomainError } from '../shared/errors';

/**
 * JSON bodies with a limit that matches what each route accepts: an event with 20 000 seats, a count
 * with 100 000 SKUs or lines, and small bodies everywhere else. Too large is a 413 with a code; a body
 * that is not JSON (other than a count's CSV upload) is a 415 before any route sees it.
 */
const LIMITS: { method: string; path: RegExp; limit: string }[] = [
  { method: 'POST', path: /^\/v1\/events\/?$/, limit: '4mb' }, // 20 000 seats × ~150 bytes
  { method: 'PUT', path: /^\/v1\/stock-counts\/[^/]+\/lines\/?$/, limit: '12mb' }, // 100 000 × {"sku":…,"counted":…} with codes up to 64 characters
  { method: 'POST', path: /^\/v1\/stock-counts\/?$/, limit: '12mb' }, // 100 000 SKU codes of up to 64 characters
];
const SMALL = '64kb';

/** Where a text/csv body is read by the route itself (streamed). */
const CSV_ROUTES = [/^\/v1\/stock-counts\/[^/]+\/lines\/?$/];
/** Where a ZIP body is read by the route itself (streamed): the acquirer's reconciliation file. */
const ZIP_ROUTES = [/^\/v1\/reconciliations\/?$/];

const parsers = new Map<string, RequestHandler>();
const parser = (limit: string) => {
  let p = parsers.get(limit);
  if (!p) parsers.set(limit, (p = express.json({ limit, type: () => true })));
  return p;
};

const hasBody = (req: express.Request) =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

export function jsonBody(): RequestHandler {
  return (req, res, next) => {
    if (!hasBody(req)) return next();
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    if (/^text\/csv\b/.test(type) && CSV_ROUTES.some((r) => r.test(req.path))) return next();
    if (
      /^application\/(zip|x-zip-compressed)\b/.test(type) &&
      req.method === 'POST' &&
      ZIP_ROUTES.some((r) => r.test(req.path))
    )
      return next();
    if (!/^application\/([\w.+-]+\+)?json\b/.test(type)) {
      return next(
        new DomainError(
          415,
          'unsupported_media_type',
          type
            ? `Content-Type ${type.slice(0, 60)} is not accepted here; send application/json`
            : 'the request has a body but no Content-Type; send application/json',
        ),
      );
    }
    const rule = LIMITS.find((l) => l.method === req.method && l.path.test(req.path));
    return parser(rule?.limit ?? SMALL)(req, res, next);
  };
}
