import express, { Router } from 'express';
import { AddressInfo } from 'node:net';
import { gated } from './gate';

async function serve(routers: (express.RequestHandler | Router)[]): Promise<{ url: string; close(): void }> {
  const app = express();
  for (const r of routers) app.use(r);
  app.use((_req, res) => void res.status(404).json({ seen: 'none' }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

describe('gated router', () => {
  it('runs the router for the first path segments of its routes, any case, and passes the rest on', async () => {
    const calls: string[] = [];
    const r = Router();
    r.get('/orders/:id/{*rest}', (req, res) => void res.json({ seen: 'orders-rest' }));
    r.post('/orders', (_req, res) => void res.json({ seen: 'orders' }));
    const spy: express.RequestHandler = (req, _res, next) => {
      calls.push(req.path);
      next();
    };
    const s = await serve([gated(r), spy]);
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

  it('leaves a router with a middleware of its own, or a route starting with a parameter, ungated', () => {
    const withMiddleware = Router();
    withMiddleware.use((_req, _res, next) => next());
    withMiddleware.get('/a', (_req, res) => void res.end());
    expect(gated(withMiddleware)).toBe(withMiddleware);
    const withParam = Router();
    withParam.get('/:anything', (_req, res) => void res.end());
    expect(gated(withParam)).toBe(withParam);
    const plain = Router();
    plain.get('/a', (_req, res) => void res.end());
    expect(gated(plain)).not.toBe(plain);
  });
});
