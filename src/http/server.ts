import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Express, Request, Response } from 'express';

/**
 * The HTTP server for an express app, with requests and responses made with the app's own
 * prototypes. On every request express 5 runs `Object.setPrototypeOf(req, app.request)` and the same
 * for `res`; changing the prototype of an object that exists throws away the shapes V8 optimised it
 * by, and node's HTTP code then runs slowly on both objects for the rest of the request. Made with
 * `app.request` / `app.response` as their prototype from the start, express's setPrototypeOf finds
 * the prototype it would set already there and changes nothing (SameValue: a no-op).
 *
 * Measured on this machine (`npm run bench:reserve`, the bare handler's two lines): the same empty
 * express handler served this way answers 1.3–2.0 times as many requests a second as with
 * `app.listen`. Hand-written because express has no option for it; expressjs/express#5998
 * proposes the same (`http.createServer({ IncomingMessage, ServerResponse }, app)`).
 */
export function serverFor(app: Express, first?: (req: Request, res: Response) => boolean): Server {
  // Node 20 defines both as plain functions, so they can run on an object made elsewhere. Were they
  // ever classes (a call without `new` throws), the app is served the usual way. Reflect.construct
  // with a new target would work for classes too, but its objects were as slow as express's own.
  if ([IncomingMessage, ServerResponse].some((f) => /^class\b/.test(Function.prototype.toString.call(f))))
    return createServer(app);
  const asFunction = (f: unknown) => f as (this: unknown, ...args: unknown[]) => void;
  function Request(this: IncomingMessage, socket: Socket): void {
    asFunction(IncomingMessage).call(this, socket);
  }
  Request.prototype = app.request;
  function Response(this: ServerResponse, req: IncomingMessage, options?: object): void {
    asFunction(ServerResponse).call(this, req, options);
  }
  Response.prototype = app.response;
  return createServer(
    {
      IncomingMessage: Request as unknown as typeof IncomingMessage,
      ServerResponse: Response as unknown as typeof ServerResponse,
    },
    // `first` (http/hot-path.ts) may take a request before express does; it needs the app's prototypes.
    first ? (req, res) => first(req as Request, res as Response) || app(req, res) : app,
  );
}
