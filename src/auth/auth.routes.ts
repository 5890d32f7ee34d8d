import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow } from '../http/auth';
import { laneName, noQuery, parse } from '../http/validate';
import { AuthService } from './auth.service';

const keyBody = z.object({ role: z.enum(['cashier', 'backoffice', 'admin']), lane: laneName.optional() }).strict();

export function authRoutes(auth: AuthService): Router {
  const r = Router();
  r.post('/api-keys', allow('admin'), async (req, res) => {
    noQuery(req);
    const body = parse(keyBody, req.body);
    res.status(201).json(await auth.create(body, actorOf(req)));
  });
  return r;
}
