import express from 'express';
import { AddressInfo } from 'node:net';
import { AuthService, Principal } from '../auth/auth.service';
import { authenticate, MissLimiter } from './auth';

/** An AuthService whose database answers slowly, as MariaDB does on a busy till server. */
function slowAuth(valid: string): { auth: AuthService; lookups: () => number } {
  let n = 0;
  const cache = new Map<string, Principal | null>();
  const auth = {
    cached: (raw: string) => (cache.has(raw) ? { principal: cache.get(raw)! } : undefined),
    authenticate: async (raw: string) => {
      n++;
      await new Promise((r) => setTimeout(r, 50));
      const p: Principal | null = raw === valid ? { id: 'k1', role: 'backoffice', lane: null } : null;
      cache.set(raw, p);
      return p;
    },
  } as unknown as AuthService;
  return { auth, lookups: () => n };
}

async function serve(auth: AuthService, limiter: MissLimiter) {
  const app = express();
  app.use(authenticate(auth, limiter));
  app.get('/x', (_req, res) => {
    res.json({ ok: true });
  });
  app.use((err: { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(err.status ?? 500).json({});
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
  return { url, close: () => new Promise((r) => server.close(r)) };
}

describe('authenticate', () => {
  it('a valid key opening many connections at once is one lookup, never rate-limited as misses', async () => {
    const { auth, lookups } = slowAuth('pos_valid');
    const s = await serve(auth, new MissLimiter(5, 1));
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, () => fetch(s.url, { headers: { authorization: 'Bearer pos_valid' } })),
      );
      expect(answers.map((r) => r.status).filter((st) => st !== 200)).toEqual([]);
      expect(lookups()).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('made-up keys still cost a token each and are limited past the burst', async () => {
    const { auth } = slowAuth('pos_valid');
    const s = await serve(auth, new MissLimiter(5, 1));
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => fetch(s.url, { headers: { authorization: `Bearer pos_guess${i}` } })),
      );
      const statuses = answers.map((r) => r.status);
      expect(statuses.filter((st) => st === 401).length).toBe(5);
      expect(statuses.filter((st) => st === 429).length).toBe(15);
    } finally {
      await s.close();
    }
  });
});
