import express, { Router } from 'express';
import { AddressInfo } from 'node:net';
import { dispatch } from './gate';

async function serve(
  routers: (express.RequestHandler | Router)[],
  onError?: express.ErrorRequestHandler,
): Promise<{ url: string; close(): void }> {
  const app = express();
  for (const r of routers) app.use(r);
  app.use((_req, res) => void res.status(404).json({ seen: 'none' }));
  if (onError) app.use(onError);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections(); // fetch keeps its connections alive, which would hold the worker open
      server.close();
    },
  };
}

describe('dispatch by first path segment', () => {
  it('runs a router for the first path segments of its routes, any case, and passes the rest on', async () => {
    const calls: string[] = [];
    const r = Router();
    r.get('/orders/:id/{*rest}', (req, res) => void res.json({ seen: 'orders-rest' }));
    r.post('/orders', (_req, res) => void res.json({ seen: 'orders' }));
    const spy: express.RequestHandler = (req, _res, next) => {
      calls.push(req.path);
      next();
    };
    const s = await serve([dispatch([r]), spy]);
    try {
      expect(await (await fetch(`${s.url}/orders`, { method: 'POST' })).json()).toEqual({ seen: 'orders' });
      expect(await (await fetch(`${s.url}/ORDERS/1/x`)).json()).toEqual({ seen: 'orders-rest' });
      expect(await (await fetch(`${s.url}/orders-other`)).json()).toEqual({ seen: 'none' });
      expect(await (await fetch(`${s.url}/events/1`)).json()).toEqual({ seen: 'none' });
      expect(calls).toEqual(['/orders-other', '/events/1']);
    } finally {
      s.close();
    }
  });

  it('runs a router with a middleware of its own, or a route starting with a parameter, for every request', async () => {
    const seen: string[] = [];
    const withMiddleware = Router();
    withMiddleware.use((req, _res, next) => {
      seen.push(`mw:${req.path}`);
      next();
    });
    withMiddleware.get('/a', (_req, res) => void res.json({ seen: 'a' }));
    const withParam = Router();
    withParam.get('/:anything', (req, res, next) => {
      seen.push(`param:${req.params.anything}`);
      next();
    });
    const s = await serve([dispatch([withMiddleware, withParam])]);
    try {
      expect(await (await fetch(`${s.url}/zzz`)).json()).toEqual({ seen: 'none' });
      expect(await (await fetch(`${s.url}/a`)).json()).toEqual({ seen: 'a' });
      expect(seen).toEqual(['mw:/zzz', 'param:zzz', 'mw:/a']);
    } finally {
      s.close();
    }
  });
});

describe('dispatch', () => {
  it('runs, in their order, only the routers whose routes start with the first segment, and the ungated ones where they stand', async () => {
    const calls: string[] = [];
    const orders = Router();
    orders.post('/orders', (_req, _res, next) => {
      calls.push('orders:pass');
      next();
    });
    const events = Router();
    events.get('/events/:id', (_req, res) => void res.json({ seen: 'events' }));
    const late = Router();
    late.post('/orders', (_req, res) => void res.json({ seen: 'late-orders' }));
    late.get('/other', (_req, res) => void res.json({ seen: 'other' }));
    const spy: express.RequestHandler = (req, _res, next) => {
      calls.push(`spy:${req.path}`);
      next();
    };
    const s = await serve(
      [dispatch([orders, spy, events, late])],
      (err, _req, res, _next) => void res.status(500).json({ err }),
    );
    try {
      expect(await (await fetch(`${s.url}/orders`, { method: 'POST' })).json()).toEqual({ seen: 'late-orders' });
      expect(calls).toEqual(['orders:pass', 'spy:/orders']);
      expect(await (await fetch(`${s.url}/EVENTS/7`)).json()).toEqual({ seen: 'events' });
      expect(await (await fetch(`${s.url}/nowhere`)).json()).toEqual({ seen: 'none' });
      expect(calls).toEqual(['orders:pass', 'spy:/orders', 'spy:/EVENTS/7', 'spy:/nowhere']);
    } finally {
      s.close();
    }
  });

  it('a throw, a rejected promise or next(err) in any of them goes on to the error handlers, and no later handler runs', async () => {
    const later = jest.fn((_req: express.Request, _res: express.Response, next: express.NextFunction) => next());
    const r = Router();
    r.get('/boom', () => {
      throw new Error('thrown');
    });
    r.get('/reject', async () => {
      throw new Error('rejected');
    });
    r.get('/next', (_req, _res, next) => next(new Error('passed')));
    const asyncMiddleware: express.RequestHandler = async (req, _res, next) => {
      if (req.path === '/mw') throw new Error('middleware rejected');
      // As in express's own layers: a promise rejected with nothing is an error too.
      if (req.path === '/mw-nothing') return Promise.reject(undefined);
      next();
    };
    const s = await serve(
      [dispatch([asyncMiddleware, r, later])],
      (err: Error, _req, res, _next) => void res.status(500).json({ message: err.message }),
    );
    try {
      for (const [path, message] of [
        ['/boom', 'thrown'],
        ['/reject', 'rejected'],
        ['/next', 'passed'],
        ['/mw', 'middleware rejected'],
        ['/mw-nothing', 'Rejected promise'],
      ]) {
        const res = await fetch(`${s.url}${path}`);
        expect([res.status, await res.json()]).toEqual([500, { message }]);
      }
      expect(later).not.toHaveBeenCalled(); // it comes after every failing handler
    } finally {
      s.close();
    }
  });
});
