import express, { ErrorRequestHandler, Request, RequestHandler, Response, Router } from 'express';
import { AddressInfo } from 'node:net';
import { dispatch } from './gate';
import { HotPathParts, hotPath } from './hot-path';
import { serverFor } from './server';

/**
 * A toy app made like the service's (front middleware, a mount, its middleware, a dispatcher, a tail, an
 * error handler), served twice: with the hot path and through express alone. Every handler writes down
 * what it saw (the url, the base url, the params, the route); the answers must be the same both ways.
 */
function toyApp(): { app: express.Express; parts: HotPathParts } {
  const seen = (req: Request, res: Response, who: string) => {
    const trace = ((res.locals.trace as string[] | undefined) ??= []);
    trace.push(
      `${who} ${req.url} base=${req.baseUrl} params=${JSON.stringify(req.params)} route=${req.route?.path ?? '-'}`,
    );
  };
  const answer = (req: Request, res: Response, who: string, status = 200) => {
    seen(req, res, who);
    res.status(status).json({ trace: res.locals.trace, originalUrl: req.originalUrl });
  };
  const mw =
    (who: string): RequestHandler =>
    (req, res, next) => {
      seen(req, res, who);
      if (req.get('x-fail') === who) return next(new Error(`${who} refused`));
      next();
    };

  const things = Router();
  things.post('/things/:id/{*rest}', (req, res, next) => {
    seen(req, res, 'things-pre');
    next();
  });
  things.post('/things', (req, res) => answer(req, res, 'things-create', 201));
  things.get('/things/:id/do', (req, res) => answer(req, res, 'things-get-do'));
  things.post('/things/:id/do', mw('do-guard'), async (req, res, next) => {
    seen(req, res, 'do');
    const mode = (req.body as { mode?: string } | undefined)?.mode;
    if (mode === 'throw') throw new Error('thrown');
    if (mode === 'reject') return Promise.reject(new Error('rejected'));
    if (mode === 'falsy-reject') return Promise.reject(undefined);
    if (mode === 'next-err') return next(new Error('passed on'));
    if (mode === 'route') return next('route');
    if (mode === 'router') return next('router');
    if (mode === 'none') return next();
    await new Promise((r) => setImmediate(r));
    answer(req, res, 'do-answer', 202);
  });
  things.post('/things/:id/:verb', (req, res) => answer(req, res, 'things-verb'));

  const nestedInner = Router();
  nestedInner.post('/things/:id/route', (req, res) => answer(req, res, 'nested-after-route'));
  nestedInner.post('/things/:id/router', (req, res) => answer(req, res, 'nested-after-router'));
  const nested = Router();
  nested.use(mw('nested-mw'));
  nested.use(nestedInner);

  const dispatcher = dispatch([things, mw('between'), nested]);
  const tail: RequestHandler[] = [
    (() => {
      const r = Router();
      r.get('/healthz', (req, res) => answer(req, res, 'healthz'));
      return r;
    })(),
    (req, res) => answer(req, res, 'not-found', 404),
  ];
  const errors: ErrorRequestHandler = (err, req, res, _next) => {
    seen(req, res, `error(${(err as Error).message})`);
    res.status(500).json({ trace: res.locals.trace });
  };
  const front = [mw('front'), express.json({ type: () => true })];
  const within = [mw('within')];

  const app = express();
  app.disable('x-powered-by');
  for (const f of front) app.use(f);
  const v1 = Router();
  for (const f of within) v1.use(f);
  v1.use(dispatcher);
  app.use('/v1', v1);
  for (const f of tail) app.use(f);
  app.use(errors);
  return { app, parts: { front, mount: '/v1', within, dispatcher, tail, errors } };
}

async function listen(server: ReturnType<typeof serverFor>): Promise<{ url: string; close(): void }> {
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('the hot path', () => {
  let hot: { url: string; close(): void };
  let plain: { url: string; close(): void };
  let taken = 0;

  beforeAll(async () => {
    const a = toyApp();
    const first = hotPath(a.parts, [
      { method: 'POST', path: '/things' },
      { method: 'POST', path: '/things/:id/do' },
    ]);
    hot = await listen(
      serverFor(a.app, (req, res) => {
        const took = first(req, res);
        if (took) taken++;
        return took;
      }),
    );
    plain = await listen(serverFor(toyApp().app));
  });
  afterAll(() => {
    hot?.close();
    plain?.close();
  });

  const ask = async (base: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: r.status, body: await r.text() };
  };

  const cases: [string, string, unknown, Record<string, string>][] = [
    ['a route with no params', '/v1/things', {}, {}],
    ['a route after a matching pre-route, answered later', '/v1/things/a1/do', {}, {}],
    ['an encoded param', '/v1/things/a%2Fb/do', {}, {}],
    ['a throw', '/v1/things/a1/do', { mode: 'throw' }, {}],
    ['a rejected promise', '/v1/things/a1/do', { mode: 'reject' }, {}],
    ['a promise rejected with nothing', '/v1/things/a1/do', { mode: 'falsy-reject' }, {}],
    ['next(err)', '/v1/things/a1/do', { mode: 'next-err' }, {}],
    ["next('route'): the next route that matches", '/v1/things/a1/do', { mode: 'route' }, {}],
    ["next('router'): the rest of the chain", '/v1/things/router/do', { mode: 'router' }, {}],
    ['next(): on to the tail', '/v1/things/a1/do', { mode: 'none' }, {}],
    ['a front middleware refuses', '/v1/things/a1/do', {}, { 'x-fail': 'front' }],
    ['the mount middleware refuses', '/v1/things/a1/do', {}, { 'x-fail': 'within' }],
    ["a route's own middleware refuses", '/v1/things/a1/do', {}, { 'x-fail': 'do-guard' }],
    ['a body that is not JSON', '/v1/things/a1/do', '{"mode":', {}],
  ];

  // Every row has all four cells: jest takes a test function with more parameters than its row has cells for one that waits for `done`.
  it.each(cases)('answers as express does: %s', async (_name, path, body, headers) => {
    const before = taken;
    const h = await ask(hot.url, path, body, headers);
    expect(taken).toBe(before + 1);
    expect(h).toEqual(await ask(plain.url, path, body, headers));
    expect(h.body).toContain('"trace"');
  });

  it.each([
    ['the mount in capitals', '/V1/things'],
    ['a query string', '/v1/things?x=1'],
    ['another route of the segment', '/v1/things/a1/go'],
    ['a param express cannot decode', '/v1/things/%E0%A4%A/do'],
    ['another segment', '/v1/other'],
  ])('leaves to express what is not plainly a hot route (%s), which answers as before', async (_name, path) => {
    const before = taken;
    const h = await ask(hot.url, path, {});
    expect(taken).toBe(before);
    expect(h).toEqual(await ask(plain.url, path, {}));
  });

  it('refuses, when the app is made, what it cannot mirror', () => {
    const { parts } = toyApp();
    const mounted = Router();
    mounted.use('/things', (_req, _res, next) => next());
    mounted.post('/things', (_req, res) => void res.end());
    const onPath = { ...parts, dispatcher: dispatch([mounted]) };
    expect(() => hotPath(onPath, [{ method: 'POST', path: '/things' }])).toThrow(/mounted on a path/);
    const withErrors = Router();
    withErrors.post('/things', (_req: Request, res: Response) => void res.end());
    withErrors.use(((_e, _q, _s, _n) => undefined) as ErrorRequestHandler);
    expect(() =>
      hotPath({ ...parts, dispatcher: dispatch([withErrors]) }, [{ method: 'POST', path: '/things' }]),
    ).toThrow(/not a plain request handler/);
    expect(() => hotPath(parts, [{ method: 'POST', path: '/nothing' }])).toThrow(/no route POST \/nothing/);
  });
});
