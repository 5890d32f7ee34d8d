import express from 'express';
import { AddressInfo } from 'node:net';
import { serverFor } from './server';

describe('serverFor', () => {
  it("makes requests and responses with the app's prototypes before express sees them, and express works on them", async () => {
    const app = express();
    app.use(express.json());
    app.post('/echo/:id', (req, res) => {
      res
        .status(201)
        .set('X-Seen', req.get('x-probe') ?? '')
        .json({ id: req.params.id, body: req.body, path: req.path });
    });
    // The app calls app.handle for every request: what it is given is what node's server made.
    const seen: boolean[] = [];
    const withHandle = app as unknown as { handle: (req: unknown, res: unknown, next?: unknown) => void };
    const handle = withHandle.handle.bind(app);
    withHandle.handle = (req, res, next) => {
      seen.push(Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response);
      handle(req, res, next);
    };
    const server = serverFor(app).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const res = await fetch(`${url}/echo/42?x=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-probe': 'yes' },
        body: JSON.stringify({ a: [1, 2] }),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('x-seen')).toBe('yes');
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.json()).toEqual({ id: '42', body: { a: [1, 2] }, path: '/echo/42' });
      expect((await fetch(`${url}/nothing`)).status).toBe(404);
      expect(seen).toEqual([true, true]);
    } finally {
      server.close();
    }
  });
});
