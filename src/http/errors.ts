import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { isDuplicateKey } from '../db/errors';
import { DomainError } from '../shared/errors';
import { Logger } from '../shared/logger';

declare module 'express-serve-static-core' {
  interface Request {
    id?: string;
  }
}

/** Every request gets an id (or keeps a sane one it brought), echoed in `X-Request-Id` and in a 500's body, so a report finds its log line. */
export const requestId: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  req.id = given && /^[\w.:-]{1,64}$/.test(given) ? given : randomUUID();
  res.set('X-Request-Id', req.id);
  next();
};

export const notFoundRoute: RequestHandler = (req, res) => {
  res.status(404).json({
    error: { code: 'route_not_found', message: `no route ${req.method} ${req.path.slice(0, 200)}`, details: {} },
  });
};

/** The body-parser refusals we expect, each with a stable code and our own words (never the library's text). */
const PARSER_ERRORS: Record<string, [number, string, string]> = {
  'entity.too.large': [413, 'payload_too_large', 'the request body is larger than this route accepts'],
  'entity.parse.failed': [400, 'invalid_json', 'the request body is not valid JSON (an object or array)'],
  'encoding.unsupported': [415, 'unsupported_encoding', 'the Content-Encoding is not supported'],
  'charset.unsupported': [415, 'unsupported_charset', 'the charset is not supported; send UTF-8'],
  'request.aborted': [400, 'request_aborted', 'the request body ended early'],
  'request.size.invalid': [400, 'request_size_invalid', 'the request body does not match its Content-Length'],
  'stream.encoding.set': [500, 'internal_error', 'internal error'],
};

/**
 * The one place errors become HTTP: typed outcomes → 4xx, body-parser refusals → 4xx, a unique key
 * two requests raced for → 409, anything else → 500 `internal_error` with the request id; the details
 * go to the log only (an HTTP answer never carries internal error text).
 */
/** The body of every error answer: `{error: {code, message, details}}`. */
export const errorBody = (code: string, message: string, details: Record<string, unknown> = {}) => ({
  error: { code, message, details },
});

/** A refusal's answer body (a DomainError), as the error handler sends it. */
export const domainErrorBody = (err: DomainError) => errorBody(err.code, err.message, err.details ?? {});

/** A 500's body: the request id and nothing of the internal error. */
export const internalErrorBody = (req: Request) =>
  errorBody('internal_error', `internal error (request ${req.id ?? 'unknown'})`, { requestId: req.id });

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const send = (status: number, code: string, message: string, details: Record<string, unknown> = {}) => {
      if (res.headersSent) {
        res.end();
        return;
      }
      res.status(status).json(errorBody(code, message, details));
    };
    if (err instanceof DomainError) return send(err.status, err.code, err.message, err.details ?? {});
    const type = (err as { type?: string })?.type;
    const status = (err as { status?: number })?.status;
    const known = type ? PARSER_ERRORS[type] : undefined;
    if (known && known[0] < 500) return send(known[0], known[1], known[2]);
    if (isDuplicateKey(err)) {
      log.warn('unique key raced', {
        requestId: req.id,
        method: req.method,
        path: req.path,
        err: String((err as Error)?.message ?? err),
      });
      return send(409, 'already_exists', 'another request created the same thing at the same moment; read it or retry');
    }
    if (typeof status === 'number' && status >= 400 && status < 500)
      return send(status, 'bad_request', 'the request cannot be read');
    log.error('unhandled error', {
      requestId: req.id,
      method: req.method,
      path: req.path,
      err: (err as Error)?.stack ?? String(err),
    });
    if (res.headersSent) res.end();
    else res.status(500).json(internalErrorBody(req));
  };
}
