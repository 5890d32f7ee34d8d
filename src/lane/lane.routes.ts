/**
 * What the lane's screen needs beside the core routes: who the key is (`GET /v1/me`) and a card
 * payment's progress as server-sent events (`GET /v1/payments/:id/events`).
 */
import { Router } from 'express';
import { allow } from '../http/auth';
import { noQuery, pathParam, uuidParam } from '../http/validate';
import { DomainError } from '../shared/errors';
import { PaymentsService, PaymentView } from '../payments/payments.service';

/** Nothing can change these any more, so the stream ends after saying so. */
const FINAL = new Set(['approved', 'declined', 'reversed']);

export function laneRoutes(
  payments: PaymentsService,
  opts: { shiftsRequired: boolean; heartbeatMs?: number },
): Router & { endStreams(): void } {
  const r = Router() as Router & { endStreams(): void };
  const streams = new Set<() => void>();
  r.endStreams = () => {
    for (const f of [...streams]) f();
  };

  r.get('/me', async (req, res) => {
    noQuery(req);
    const p = req.principal!;
    res.json({ id: p.id, role: p.role, lane: p.lane, shiftsRequired: opts.shiftsRequired });
  });

  /**
   * `prompt` (data: {text}) for each terminal prompt as it arrives, `status` (data: the payment)
   * first and on every change. EventSource cannot send an Authorization header: read it with
   * fetch() and a stream reader. Ends after a final status; `unknown` stays open (the sweeper may settle it).
   */
  r.get('/payments/:id/events', allow('cashier', 'backoffice'), async (req, res) => {
    noQuery(req);
    const id = pathParam('paymentId', uuidParam, req.params.id);
    let view = await payments.view(id);
    const bound = req.principal!.lane;
    if (bound && view.lane && view.lane !== bound)
      throw new DomainError(403, 'lane_mismatch', `this key is for lane ${bound}, not ${view.lane}`);

    res.status(200).set({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    let seq = 0;
    const send = (event: string, data: unknown) => {
      res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    let prompts = 0;
    let lastStatus = '';
    let closed = false;
    const emit = (v: PaymentView) => {
      for (; prompts < v.prompts.length; prompts++) send('prompt', { text: v.prompts[prompts], paymentId: v.id });
      if (v.status !== lastStatus || v.updatedAt !== view.updatedAt) send('status', v);
      lastStatus = v.status;
      view = v;
      if (FINAL.has(v.status)) finish();
    };
    let busy = false;
    let again = false;
    const onChange = async () => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          if (!closed) emit(await payments.view(id));
        } while (again && !closed);
      } catch {
        finish();
      } finally {
        busy = false;
      }
    };
    const unsubscribe = payments.subscribe(id, () => {
      void onChange();
    });
    const beat = setInterval(() => res.write(': keep-alive\n\n'), opts.heartbeatMs ?? 15_000);
    function finish() {
      if (closed) return;
      closed = true;
      streams.delete(finish);
      unsubscribe();
      clearInterval(beat);
      res.end();
    }
    req.on('close', finish);
    streams.add(finish);
    // First the current status, then every prompt so far: a screen that connects late misses nothing.
    send('status', view);
    lastStatus = view.status;
    emit(view);
    // A change committed between the first read and the subscription notified nobody: read once more.
    if (!closed) void onChange();
  });

  return r;
}
