import type { Request, RequestHandler } from 'express';
import { AuthService, Principal } from '../auth/auth.service';
import { Role } from '../auth/api-key.entity';
import { DomainError } from '../shared/errors';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export function authenticate(auth: AuthService): RequestHandler {
  return async (req, _res, next) => {
    const h = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (!m) throw new DomainError(401, 'unauthorized', 'send Authorization: Bearer <API key>');
    const principal = await auth.authenticate(m[1]);
    if (!principal) throw new DomainError(401, 'unauthorized', 'the API key is not valid');
    req.principal = principal;
    next();
  };
}

/** admin may do everything; otherwise the key's role must be one of `roles`. */
export function allow(...roles: Role[]): RequestHandler {
  return (req, _res, next) => {
    const p = req.principal!;
    if (p.role !== 'admin' && !roles.includes(p.role)) {
      throw new DomainError(403, 'forbidden', `this needs a ${roles.join(' or ')} key; yours is ${p.role}`);
    }
    next();
  };
}

export const actorOf = (req: Request): string => `key:${req.principal!.id}`;

/** A cashier key bound to a lane may only work that lane. */
export function checkLane(req: Request, lane: string): void {
  const bound = req.principal?.lane;
  if (bound && bound !== lane) throw new DomainError(403, 'lane_mismatch', `this key is for lane ${bound}, not ${lane}`);
}
