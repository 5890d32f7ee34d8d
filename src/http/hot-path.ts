import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { firstSegment, runHandler } from './gate';

type Next = (err?: unknown) => void;
type Handler = (req: Request, res: Response, next: Next) => unknown;
type Match = false | { params: Record<string, string>; path: string };
interface RouteLike {
  path: unknown;
  stack: { method?: string; handle: Handler }[];
  _handlesMethod(method: string): boolean;
}
interface LayerLike {
  route?: RouteLike;
  /** A `use(fn)` layer with no path: it matches every path and trims nothing. */
  slash?: boolean;
  match(path: string): Match;
  handle: Handler;
}
interface RouterLike {
  stack: LayerLike[];
  params?: Record<string, unknown>;
  mergeParams?: boolean;
}

/** What the app is made of, in the order it is mounted: the hot path runs the same handlers in the same order. */
export interface HotPathParts {
  /** The app's middleware before the mount, mounted with `app.use(fn)`. */
  front: RequestHandler[];
  /** Where the API is mounted (`app.use(mount, router)`), e.g. `/v1`. */
  mount: string;
  /** The mounted router's middleware (`router.use(fn)`), before the dispatcher. */
  within: RequestHandler[];
  /** The mounted router's last handler: `dispatch(...)` (http/gate.ts), which picks its chain by the first path segment. */
  dispatcher: RequestHandler & { chainFor(segment: string): RequestHandler[] };
  /** What the app runs after the mount for a request nothing answered (`app.use(fn)` each; routers allowed). */
  tail: RequestHandler[];
  /** The app's error handler, mounted last. */
  errors: ErrorRequestHandler;
}

/** A step of the flattened chain. */
type Step =
  | { kind: 'fn'; fn: Handler }
  | { kind: 'route'; layer: LayerLike; handlers: Handler[] }
  | { kind: 'exit' } // a router ends: its params are the mount's again
  | { kind: 'enter' } // the mount's router starts
  | { kind: 'leave' }; // the mount's router ends

interface HotRoute {
  target: LayerLike;
  steps: Step[];
}

const isRouter = (h: unknown): h is RouterLike & Handler =>
  typeof h === 'function' && Array.isArray((h as { stack?: unknown }).stack);

/**
 * The steps express would take for a `method` request under `mount` whose first segment picks `chain`:
 * each router's routes tried in turn against the path (per request, by the routes' own matchers), each
 * plain middleware run. What the flattening cannot mirror is refused when the app is made, not
 * served differently: a router's own middleware or param callbacks, merged params, error handlers.
 */
function flatten(parts: HotPathParts, method: string, chain: RequestHandler[]): Step[] {
  const lower = method.toLowerCase();
  const plain = (fn: unknown, where: string): Step => {
    if (typeof fn !== 'function' || fn.length > 3) throw new Error(`hot path: ${where} is not a plain request handler`);
    return { kind: 'fn', fn: fn as Handler };
  };
  const steps: Step[] = parts.front.map((f, i) => plain(f, `front[${i}]`));
  steps.push({ kind: 'enter' });
  steps.push(...parts.within.map((f, i) => plain(f, `within[${i}]`)));
  const router = (h: RouterLike & Handler): Step[] => {
    if (h.mergeParams || Object.keys(h.params ?? {}).length)
      throw new Error('hot path: a router with merged params or param callbacks');
    const out: Step[] = [];
    for (const layer of h.stack) {
      const route = layer.route;
      if (!route) {
        // `router.use(fn)` with no path: runs for every request, without touching the url.
        if (!layer.slash)
          throw new Error('hot path: a router with middleware mounted on a path; serve it through express');
        out.push(...(isRouter(layer.handle) ? router(layer.handle) : [plain(layer.handle, 'router middleware')]));
        continue;
      }
      if (!route._handlesMethod(method)) continue; // never matches this method
      const handlers = route.stack.filter((l) => !l.method || l.method === lower).map((l) => l.handle);
      handlers.forEach((fn, i) => plain(fn, `${method} ${String(route.path)} handler ${i}`));
      out.push({ kind: 'route', layer, handlers });
    }
    out.push({ kind: 'exit' });
    return out;
  };
  for (const h of chain) steps.push(...(isRouter(h) ? router(h) : [plain(h, 'a dispatched middleware')]));
  steps.push({ kind: 'leave' });
  steps.push(...parts.tail.map((f) => (isRouter(f) ? ({ kind: 'fn', fn: f } as Step) : plain(f, 'tail'))));
  return steps;
}

/**
 * Serves the listed routes without express's routing, running the handlers express would run, in the
 * order it would run them, on the same request and response objects (made with the app's prototypes
 * by http/server.ts). Returns the server's request listener's first look: true when it took the request.
 *
 * Why: under `bench:seats` express's routing (the router's `next` loop, its layers, mount prefix
 * trimming and restoring, an app router then a mounted router then a capability's router) was more
 * than a tenth of the service's CPU per seat hold and a fifth of its garbage, for requests whose way
 * through the app is the same every time. Measured on this machine, three alternating pairs of
 * one-process `bench:seats`: 0.192 / 0.179 / 0.186 ms of server CPU per request against 0.222 / 0.219 /
 * 0.211 through express. Hand-written: express has no precompiled routing; this is its `Router.handle`
 * flattened for one method and first segment, with the route matching left to the routes' own matchers.
 *
 * A request is taken only when it plainly is one of the routes: the method, the mount as written
 * (express would also take `/V1/`), no query string, and the route's own matcher. Anything else goes to
 * express, untouched. What express does and this mirrors:
 * - `app.handle`: `req.res`, `res.req`, `res.locals`; the prototypes are already the app's.
 * - the mount: `req.url` without the mount and `req.baseUrl` set while inside it, both restored on the way out;
 * - each route: `req.params` from its match, `req.route` set (and left set, as express does);
 * - `req.params` back to the mount's when a router is left;
 * - `next(err)` skips every later handler and goes to the error handler with `req.url` and `req.baseUrl`
 *   restored; `next('route')` leaves the route and `next('router')` the router; a throw or a rejected
 *   promise is `next(err)` (a falsy rejection is an Error, a falsy throw is `next()`), as in `Layer.handleRequest`.
 */
export function hotPath(
  parts: HotPathParts,
  routes: { method: string; path: string }[],
): ((req: Request, res: Response) => boolean) & { taken(): number } {
  const table = new Map<string, HotRoute[]>();
  for (const { method, path } of routes) {
    const segment = firstSegment(path);
    const chain = parts.dispatcher.chainFor(segment);
    const target = chain
      .filter(isRouter)
      .flatMap((r) => r.stack)
      .find((l) => l.route && l.route.path === path && l.route._handlesMethod(method));
    if (!target) throw new Error(`hot path: no route ${method} ${path}`);
    const key = `${method} ${segment}`;
    const list = table.get(key) ?? [];
    list.push({ target, steps: flatten(parts, method, chain) });
    table.set(key, list);
  }
  const prefix = `${parts.mount}/`;
  let taken = 0;

  const first = (req: Request, res: Response): boolean => {
    const url = req.url;
    if (!url.startsWith(prefix) || url.includes('?')) return false;
    const rest = url.slice(parts.mount.length);
    const candidates = table.get(`${req.method} ${firstSegment(rest)}`);
    if (!candidates) return false;
    let hot: HotRoute | undefined;
    let known: Match = false;
    for (const c of candidates) {
      try {
        known = c.target.match(rest);
      } catch {
        return false; // a path express would fail to decode: its error, its way
      }
      if (known) {
        hot = c;
        break;
      }
    }
    if (!hot) return false;
    taken++;
    run(parts, hot, known, req, res, url, rest);
    return true;
  };
  return Object.assign(first, { taken: () => taken });
}

function run(
  parts: HotPathParts,
  hot: HotRoute,
  known: Match,
  req: Request,
  res: Response,
  url: string,
  rest: string,
): void {
  const { steps } = hot;
  req.res = res;
  res.req = req;
  if (!res.locals) res.locals = Object.create(null) as Response['locals'];
  req.baseUrl = '';
  req.originalUrl = req.originalUrl || url;
  req.params = {};
  let i = 0;
  let pending: unknown = null;
  let inside = false;

  const leave = () => {
    inside = false;
    req.url = url;
    req.baseUrl = '';
    req.params = {};
  };

  const next: Next = (err) => {
    if (err === 'route') err = undefined;
    if (err === 'router') {
      // Leaves the router the last route was in: on to its exit step.
      err = undefined;
      while (i < steps.length && steps[i].kind !== 'exit') i++;
    }
    if (err) pending = err;
    while (i < steps.length) {
      const s = steps[i++];
      switch (s.kind) {
        case 'enter':
          inside = true;
          req.url = rest;
          req.baseUrl = parts.mount;
          req.params = {};
          continue;
        case 'leave':
          leave();
          continue;
        case 'exit':
          req.params = {};
          continue;
        case 'fn':
          if (pending) continue;
          return runHandler(s.fn, req, res, next);
        case 'route': {
          if (pending) continue;
          let m: Match;
          try {
            m = s.layer === hot.target && known ? known : s.layer.match(rest);
          } catch (e) {
            pending = e;
            continue;
          }
          if (!m) continue;
          req.params = m.params;
          req.route = s.layer.route;
          let h = 0;
          const inRoute: Next = (e) => {
            if (e === 'route') return next();
            if (e === 'router') return next('router');
            if (e || h >= s.handlers.length) return next(e);
            runHandler(s.handlers[h++], req, res, inRoute);
          };
          return inRoute();
        }
      }
    }
    if (inside) leave();
    if (pending) {
      const e = pending;
      pending = null;
      try {
        parts.errors(e, req, res, final);
      } catch (thrown) {
        final(thrown);
      }
      return;
    }
    final();
  };
  // Nothing after the error handler: express would run finalhandler here; our error handler always answers.
  const final = (err?: unknown) => {
    if (res.headersSent) return void res.end();
    res.statusCode = err ? 500 : 404;
    res.end();
  };
  next();
}
