import type { RequestHandler, Router } from 'express';

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

function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return (end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase();
}

/**
 * Runs `router` only for requests whose first path segment one of its routes starts with. Express
 * tries every route of every mounted router in turn: a seat hold, mounted late, was matched against
 * some forty routes first, and route matching was ~7 % of the service's CPU under bench:seats. The
 * segments come from the router's own routes, so the gate cannot drift from them; a router with a
 * middleware of its own, or a route that starts with a parameter, is always run.
 */
export function gated(router: Router): RequestHandler {
  const segments = segmentsOf(router);
  if (!segments) return router;
  const gate: RequestHandler = (req, res, next) =>
    segments.has(firstSegment(req.path)) ? router(req, res, next) : next();
  // The routes stay visible to whoever lists the app's routes (the fuzz test walks `stack`).
  return Object.assign(gate, { stack: router.stack });
}

/**
 * What `for (const h of handlers) app.use(gated(h))` does, as one layer: the request's first path
 * segment picks, from a table made once, the handlers that can answer it (in their order, with the
 * ungated ones where they stand), and only those run. Each mounted layer costs express's router a
 * turn of its `next` loop, a match and a call even when its gate passes the request on; with a dozen
 * capability routers that loop was the largest of express's own costs in bench:seats' profile.
 * Hand-written: express has no dispatch by path segment (a Router tries its layers in turn).
 */
export function dispatch(handlers: (RequestHandler | Router)[]): RequestHandler {
  const entries = handlers.map((h) => ({ h: h as RequestHandler, segments: segmentsOf(h) }));
  const chainFor = (segment: string | null) =>
    entries.filter((e) => !e.segments || (segment !== null && e.segments.has(segment))).map((e) => e.h);
  const chains = new Map<string, RequestHandler[]>();
  for (const e of entries) for (const s of e.segments ?? []) if (!chains.has(s)) chains.set(s, chainFor(s));
  const rest = chainFor(null);
  const handler: RequestHandler = (req, res, next) => {
    const chain = chains.get(firstSegment(req.path)) ?? rest;
    let i = 0;
    // As express runs a layer: a throw or a rejected promise goes on as next(err), and an error passed
    // to next leaves the chain (none of these handlers handles errors).
    const step = (err?: unknown): void => {
      if (err) return next(err);
      if (i >= chain.length) return next();
      const h = chain[i++];
      try {
        const r = h(req, res, step) as unknown;
        if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, step);
      } catch (e) {
        step(e ?? new Error('a handler threw a falsy value'));
      }
    };
    step();
  };
  // The routes stay visible to whoever lists the app's routes (the fuzz test walks `stack`).
  return Object.assign(handler, {
    stack: handlers.flatMap((h) => (h as { stack?: unknown[] }).stack ?? []),
  });
}
