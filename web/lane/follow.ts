/**
 * Follows a card attempt live: the service's server-sent events when it has them (read with fetch,
 * because EventSource cannot send the Bearer key), else short polls of GET /v1/payments/:id (a long
 * poll with ?wait= answers only when the status changes, so it would hide the prompts).
 * Calls `update` with each newer view of the payment until `stop()` or a final state.
 */
import type { PaymentView } from '@server/payments/payments.service';
import { Api, ApiError } from '@common/api';

const FINAL = new Set(['approved', 'declined', 'reversed']);

export function followPayment(api: Api, id: string, update: (p: PaymentView) => void): { stop(): void } {
  const ctrl = new AbortController();
  let stopped = false;
  const stop = () => {
    stopped = true;
    ctrl.abort();
  };

  async function viaEvents(): Promise<boolean> {
    const res = await fetch(`/v1/payments/${id}/events`, {
      headers: { authorization: `Bearer ${api.key.value}`, accept: 'text/event-stream' },
      signal: ctrl.signal,
    });
    if (!res.ok || !res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) return false;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || stopped) break;
      buf += value;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = chunk
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (!data) continue;
        // Whatever the event carries, the payment itself is read back so the screen shows one shape.
        const p = await api.call<PaymentView>('GET', `/v1/payments/${id}`);
        update(p);
        if (FINAL.has(p.status)) return true;
      }
    }
    return true;
  }

  async function viaPolling() {
    while (!stopped) {
      const p = await api.call<PaymentView>('GET', `/v1/payments/${id}`, undefined, { signal: ctrl.signal });
      update(p);
      if (FINAL.has(p.status)) return;
      // Unknown or in suspense: the sweeper asks the bank on its own schedule; look again less often.
      await new Promise((r) => setTimeout(r, p.status === 'pending' ? 250 : 2000));
    }
  }

  void (async () => {
    try {
      // No event stream on this server, or it ended: polls carry on (a final state returns at once).
      await viaEvents().catch((e) => {
        if (stopped) throw e;
        return false;
      });
      if (!stopped) await viaPolling();
    } catch (err) {
      if (!stopped && !(err instanceof DOMException) && !(err instanceof ApiError)) console.error(err);
    }
  })();
  return { stop };
}
