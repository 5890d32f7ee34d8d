import type { Request, RequestHandler, Response, Router } from 'express';

/**
 * The first path segments `router`'s routes start with (lower case: express matches paths
 * case-insensitively), or null when it must see every request: a router with a middleware of its
 * own, or a route that starts with a parameter.
 */
function segmentsOf(router: RequestHandler | Router): Set<string> | null {
  const stack = (router as { stack?: { route?: { path: unknown } }[] }).stack;
  if (!stack) return null; // a plain middleware
  const segments = new Set<string>();
  for (const layer of stack) {
    const path = layer.route?.path;
    const first = typeof path === 'string' ? /^\/([A-Za-z0-9_.-]+)(?:\/|$)/.exec(path)?.[1] : undefined;
    if (!first) return null;
    segments.add(first.toLowerCase());
  }
  return segments;
}

/** A path's first segment, lower case (express matches paths case-insensitively). */
export function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return (end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase();
}

/**
 * Runs one request handler as express's `Layer.handleRequest` does: a throw is `next(err)` (a falsy one
 * is a plain `next()`), a rejected promise is `next(err)` (a falsy rejection is an Error).
 */
export function runHandler(
  fn: (req: Request, res: Response, next: (err?: unknown) => void) => unknown,
  req: Request,
  res: Response,
  next: (err?: unknown) => void,
): void {
  try {
    const r = fn(req, res, next) as { then?: unknown } | undefined;
    if (r && typeof r.then === 'function')
      (r as Promise<unknown>).then(undefined, (e: unknown) => next(e || new Error('Rejected promise')));
  } catch (e) {
    next(e);
  }
}

/**
 * The handlers, mounted in this order, as one layer in which each router only sees the requests whose
 * first path segment one of its routes starts with: the segment picks, from a table made once, the
 * handlers that can answer (in their order, with those that see every request where they stand), and
 * only those run. Express tries every route of every mounted router in turn: a seat hold, mounted
 * late, was matched against some forty routes first (route matching ~7 % of the service's CPU under
 * bench:seats, session 8), and then each router mounted behind its own gate still cost a turn of the
 * router's `next` loop, a match and a closure per request (the loop was the largest of express's own
 * costs in bench:seats' profile, and the router's allocations a fifth of the service's). The segments
 * come from the routers' own routes, so the table cannot drift from them; a plain middleware, a router
 * with a middleware of its own, or a route that starts with a parameter sees every request.
 * Hand-written: express has no dispatch by path segment (a Router tries its layers in turn).
 */
export function dispatch(
  handlers: (RequestHandler | Router)[],
): RequestHandler & { chainFor(segment: string): RequestHandler[] } {
  const entries = handlers.map((h) => ({ h: h as RequestHandler, segments: segmentsOf(h) }));
  const chainFor = (segment: string | null) =>
    entries.filter((e) => !e.segments || (segment !== null && e.segments.has(segment))).map((e) => e.h);
  const chains = new Map<string, RequestHandler[]>();
  for (const e of entries) for (const s of e.segments ?? []) if (!chains.has(s)) chains.set(s, chainFor(s));
  const rest = chainFor(null);
  const handler: RequestHandler = (req, res, next) => {
    const chain = chains.get(firstSegment(req.path)) ?? rest;
    let i = 0;
    // Each handler runs as express runs a layer; an error passed to next leaves the chain (none of these
    // handlers handles errors).
    const step = (err?: unknown): void => {
      if (err) return next(err);
      if (i >= chain.length) return next();
      runHandler(chain[i++], req, res, step);
    };
    step();
  };
  // The routes stay visible to whoever lists the app's routes (the fuzz test walks `stack`); the hot path
  // (http/hot-path.ts) asks for a segment's chain.
  return Object.assign(handler, {
    stack: handlers.flatMap((h) => (h as { stack?: unknown[] }).stack ?? []),
    chainFor: (segment: string): RequestHandler[] => chains.get(segment.toLowerCase()) ?? rest,
  });
}
