import type { ErrorRequestHandler, RequestHandler } from 'express';
import { DomainError } from '../shared/errors';
import { Logger } from '../shared/logger';

export const notFoundRoute: RequestHandler = (req, res) => {
  res.status(404).json({ error: { code: 'route_not_found', message: `no route ${req.method} ${req.path}` } });
};

/** The one place errors become HTTP: typed outcomes → 4xx, body-parser refusals → 4xx, anything else → 500 and a log. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (err instanceof DomainError) {
      res.status(err.status).json({ error: { code: err.code, message: err.message, details: err.details ?? {} } });
      return;
    }
    const type = (err as { type?: string }).type;
    const status = (err as { status?: number }).status;
    if (type === 'entity.too.large') {
      res.status(413).json({ error: { code: 'payload_too_large', message: 'the request body is too large', details: {} } });
      return;
    }
    if (type === 'entity.parse.failed') {
      res.status(400).json({ error: { code: 'invalid_json', message: 'the request body is not valid JSON', details: {} } });
      return;
    }
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: { code: type ? type.replace(/\W+/g, '_') : 'bad_request', message: (err as Error).message, details: {} } });
      return;
    }
    log.error('unhandled error', { method: req.method, path: req.path, err: (err as Error)?.stack ?? String(err) });
    res.status(500).json({ error: { code: 'internal_error', message: 'internal error', details: {} } });
  };
}
