import { Router } from 'express';
import { z } from 'zod';
import { actorOf, allow, checkLane, checkOrderLane, LaneDirectory } from '../http/auth';
import { domainErrorBody } from '../http/errors';
import { laneName, noQuery, parse, pathParam, positiveFen, uuidParam } from '../http/validate';
import { DomainError, unprocessable } from '../shared/errors';
import { TicketingService } from './ticketing.service';

const id = (max: number) =>
  z.string().regex(new RegExp(`^[A-Za-z0-9][A-Za-z0-9_-]{0,${max - 1}}$`), `1–${max} letters, digits, _ -`);
const eventId = id(24);
const seatId = id(32);
const ttl = z.number().int('whole seconds').min(5, 'at least 5 seconds').max(7200, 'at most 7200 seconds');

const eventBody = z
  .object({
    id: eventId,
    name: z.string().trim().min(1).max(200),
    seats: z
      .array(
        z
          .object({
            id: seatId,
            section: z.string().max(32).optional(),
            row: z.string().max(16).optional(),
            number: z.number().int().min(0).max(1_000_000).optional(),
            priceFen: positiveFen,
          })
          .strict(),
      )
      .min(1, 'at least one seat')
      .max(20_000, 'at most 20 000 seats'),
  })
  .strict();
const holdBody = z.union([
  z
    .object({
      seats: z.array(seatId).min(1, 'at least one seat').max(50, 'at most 50 seats'),
      ttlSeconds: ttl.optional(),
      lane: laneName.optional(),
    })
    .strict(),
  z
    .object({
      count: z.number().int().min(1).max(20),
      section: z.string().max(32).optional(),
      ttlSeconds: ttl.optional(),
      lane: laneName.optional(),
    })
    .strict(),
]);
const extendBody = z.object({ ttlSeconds: ttl }).strict();

export function ticketingRoutes(ticketing: TicketingService, knownLane: LaneDirectory = () => true): Router {
  const r = Router();

  r.post('/events', allow('backoffice'), async (req, res) => {
    noQuery(req);
    res.status(201).json(await ticketing.createEvent(parse(eventBody, req.body), actorOf(req)));
  });

  r.get('/events/:id/seats', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await ticketing.seats(pathParam('eventId', eventId, req.params.id)));
  });

  r.post('/events/:id/holds', allow('cashier'), async (req, res) => {
    noQuery(req);
    const ev = pathParam('eventId', eventId, req.params.id);
    const body = parse(holdBody, req.body);
    const lane = body.lane ?? req.principal?.lane ?? 'box-office';
    checkLane(req, lane);
    // A lane named explicitly must exist; the box office (no lane given) is the default counter.
    if (body.lane !== undefined && !knownLane(body.lane))
      throw unprocessable('unknown_lane', `lane ${body.lane} has no terminal and is not a cash lane (POS_LANES)`, {
        lane: body.lane,
      });
    let held;
    try {
      held = await ticketing.hold(ev, { ...body, ttlSeconds: body.ttlSeconds ?? 900, lane }, actorOf(req));
    } catch (err) {
      // In an on-sale most answers are refusals: answered here, in the error handler's shape, rather than
      // thrown through every router layer after this one on the way to it.
      if (!(err instanceof DomainError)) throw err;
      // res.json, not a leaner write: the Idempotency-Key middleware records the answer there.
      res.status(err.status).json(domainErrorBody(err));
      return;
    }
    res.status(201).json(held);
  });

  r.post('/holds/:id/extend', allow('cashier'), async (req, res) => {
    noQuery(req);
    const id = pathParam('holdId', uuidParam, req.params.id);
    const { ttlSeconds } = parse(extendBody, req.body);
    res.json(await ticketing.extend(id, ttlSeconds, actorOf(req), (lane) => checkOrderLane(req, lane)));
  });

  r.get('/orders/:id/tickets', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    res.json(await ticketing.tickets(pathParam('orderId', uuidParam, req.params.id)));
  });

  return r;
}
