import type { Request, RequestHandler } from 'express';
import { AuthService, Principal } from '../auth/auth.service';
import { Role } from '../auth/api-key.entity';
import { DomainError } from '../shared/errors';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/**
 * A token bucket per client address for requests whose key is not already known: guessing keys costs
 * a database read each, so an address gets `burst` misses and then `perSecond`; keys already in the
 * cache (valid or not) are answered without a read and are never limited.
 */
export class MissLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly burst = 50,
    private readonly perSecond = 10,
    private readonly maxClients = 10_000,
    private readonly now = Date.now,
  ) {}

  take(client: string): boolean {
    const t = this.now();
    let b = this.buckets.get(client);
    if (!b) {
      while (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: t };
    }
    this.buckets.delete(client);
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    this.buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

export function authenticate(auth: AuthService, limiter = new MissLimiter()): RequestHandler {
  const lookups = new Map<string, Promise<Principal | null>>();
  return async (req, res, next) => {
    const h = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S{1,512})$/i.exec(h);
    // The address only matters to the limiter, which a cached key never reaches (req.ip runs proxy-addr).
    const client = () => req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const refuse = (message: string) => {
      if (!limiter.take(client())) {
        res.set('Retry-After', '1');
        throw new DomainError(
          429,
          'too_many_auth_failures',
          'too many requests without a valid API key from this address; slow down',
        );
      }
      throw new DomainError(401, 'unauthorized', message);
    };
    if (!m) return refuse('send Authorization: Bearer <API key>');
    const key = m[1];
    const hit = auth.cached(key);
    let principal: Principal | null;
    if (hit) principal = hit.principal;
    else {
      // Concurrent requests with the same uncached key share one lookup and cost one token: a lane's
      // (or a bench's) 256 connections opening at once with one valid key are not "256 misses".
      let lookup = lookups.get(key);
      if (!lookup) {
        if (!limiter.take(client())) {
          res.set('Retry-After', '1');
          throw new DomainError(
            429,
            'too_many_auth_failures',
            'too many requests without a valid API key from this address; slow down',
          );
        }
        lookup = auth.authenticate(key).finally(() => lookups.delete(key));
        lookups.set(key, lookup);
      }
      principal = await lookup;
    }
    if (!principal) throw new DomainError(401, 'unauthorized', 'the API key is not valid');
    req.principal = principal;
    next();
  };
}

/** admin may do everything; otherwise the key's role must be one of `roles` (kept on the handler so tools such as the fuzz can read them). */
export function allow(...roles: Role[]): RequestHandler & { roles: Role[] } {
  const check: RequestHandler = (req, _res, next) => {
    const p = req.principal!;
    if (p.role !== 'admin' && !roles.includes(p.role)) {
      throw new DomainError(403, 'forbidden', `this needs a ${roles.join(' or ')} key; yours is ${p.role}`);
    }
    next();
  };
  return Object.assign(check, { roles });
}

export const actorOf = (req: Request): string => `key:${req.principal!.id}`;

/** A cashier key bound to a lane may only work that lane. */
export function checkLane(req: Request, lane: string): void {
  const bound = req.principal?.lane;
  if (bound && bound !== lane)
    throw new DomainError(403, 'lane_mismatch', `this key is for lane ${bound}, not ${lane}`);
}

/** A cashier key bound to a lane may only act on that lane's orders (cancel, tender, extend). */
export function checkOrderLane(req: Request, orderLane: string): void {
  const bound = req.principal?.lane;
  if (bound && bound !== orderLane) throw wrongLane(bound, orderLane);
}

/** The refusal of a lane-bound key acting on another lane's order (also decided under the order's lock: cash tenders). */
export const wrongLane = (bound: string, orderLane: string): DomainError =>
  new DomainError(403, 'wrong_lane', `this key is for lane ${bound}; the order is on lane ${orderLane}`);

/** Lanes an order may be rung up on: those with a terminal and the cash-only lanes of POS_LANES. */
export type LaneDirectory = (lane: string) => boolean;
