/**
 * The state of one sale on the lane. Every amount shown comes from a server answer (quote, order,
 * payment, cash tender); the page keeps only what the cashier typed or scanned.
 */
import { computed, reactive, watch } from 'vue';
import type { OrderView } from '@server/orders/orders.service';
import type { PaymentView } from '@server/payments/payments.service';
import type { Quote, TillItem, CashTender } from '@server/till/till.service';
import { Api, ApiError } from '@common/api';
import type { QuoteRequest } from '@common/contract';

export type Screen = 'basket' | 'cash' | 'card' | 'complete' | 'returns' | 'shift';
export type Order = OrderView & { payments?: unknown[] };

export interface SaleState {
  screen: Screen;
  lines: { sku: string; qty: number }[];
  names: Record<string, string>;
  quote: Quote | null;
  coupon: string;
  order: Order | null;
  card: PaymentView | null;
  cash: CashTender | null;
  acceptUnknownCard: boolean;
  message: { kind: 'error' | 'info' | 'warning'; text: string } | null;
  busy: boolean;
}

/** The 40-digit order code printed as a barcode on a receipt, back to the order id. */
export function orderIdOfCode(code: string): string | null {
  if (!/^\d{40}$/.test(code)) return null;
  const n = BigInt(code);
  if (n >= 1n << 128n) return null;
  const hex = n.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function useSale(api: Api, lane: string) {
  const s = reactive<SaleState>({
    screen: 'basket',
    lines: [],
    names: {},
    quote: null,
    coupon: '',
    order: null,
    card: null,
    cash: null,
    acceptUnknownCard: false,
    message: null,
    busy: false,
  });

  const paid = computed(() => s.order?.status === 'paid');
  const locked = computed(() => s.order !== null);

  async function requote() {
    if (!s.lines.length) {
      s.quote = null;
      return;
    }
    const body: QuoteRequest = { lines: s.lines };
    s.quote = await api.call<Quote>('POST', '/v1/till/quote', body);
    for (const l of s.quote.lines) s.names[l.sku] = l.name;
  }

  /** A scanned or typed code: a SKU, an EAN-13 barcode (when the server knows barcodes), or a receipt's order code. */
  async function lookup(code: string): Promise<TillItem | null> {
    try {
      return await api.call<TillItem>('GET', `/v1/till/items/${encodeURIComponent(code)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 400)) throw err;
    }
    if (/^\d{8,14}$/.test(code)) {
      try {
        const b = await api.call<{ sku: string; name?: string; priceFen?: number }>('GET', `/v1/barcodes/${code}`);
        return { sku: b.sku, name: b.name ?? b.sku, priceFen: b.priceFen ?? 0, available: 0 };
      } catch (err) {
        if (!(err instanceof ApiError) || err.status >= 500) throw err;
      }
    }
    return null;
  }

  async function addSku(sku: string, name?: string) {
    if (name) s.names[sku] = name;
    const line = s.lines.find((l) => l.sku === sku);
    if (line) line.qty += 1;
    else s.lines.push({ sku, qty: 1 });
    await requote();
  }

  async function setQty(sku: string, qty: number) {
    if (locked.value) return;
    const line = s.lines.find((l) => l.sku === sku);
    if (!line) return;
    if (qty <= 0) s.lines = s.lines.filter((l) => l.sku !== sku);
    else line.qty = qty;
    await requote();
  }

  /** Going to payment reserves the stock: the order is made once and then stays until paid or cancelled. */
  async function ensureOrder(): Promise<Order> {
    if (s.order) return s.order;
    const body: Record<string, unknown> = { lane, lines: s.lines };
    if (s.coupon.trim()) body.coupon = s.coupon.trim();
    s.order = await api.call<Order>('POST', '/v1/orders', body);
    return s.order;
  }

  async function refreshOrder() {
    if (s.order) s.order = await api.call<Order>('GET', `/v1/orders/${s.order.id}`);
  }

  /** Back to the basket: an order nobody paid anything on is cancelled so its stock is free again. */
  async function backToBasket() {
    if (
      s.order &&
      s.order.status === 'reserved' &&
      s.order.paidFen === 0 &&
      (!s.card || ['declined', 'reversed'].includes(s.card.status))
    ) {
      try {
        await api.call('POST', `/v1/orders/${s.order.id}/cancel`);
        s.order = null;
        s.card = null;
      } catch {
        await refreshOrder();
      }
    }
    s.screen = s.order && s.card && ['unknown', 'suspense', 'pending'].includes(s.card.status) ? 'card' : 'basket';
    s.cash = null;
  }

  /**
   * The order and card attempt in hand are remembered for this tab, so a reload (or a crashed
   * browser) comes back to them instead of leaving a reserved order or an unknown card off screen.
   */
  const memory = `pos.lane.${lane}.sale`;
  watch(
    () => [s.order?.id, s.card?.id],
    ([orderId, cardId]) => {
      if (orderId) sessionStorage.setItem(memory, JSON.stringify({ orderId, cardId: cardId ?? null }));
      else sessionStorage.removeItem(memory);
    },
  );

  async function resume(): Promise<void> {
    const saved = sessionStorage.getItem(memory);
    if (!saved) return;
    try {
      const { orderId, cardId } = JSON.parse(saved) as { orderId: string; cardId: string | null };
      const order = await api.call<Order>('GET', `/v1/orders/${orderId}`);
      if (order.status !== 'reserved' && order.status !== 'paid') {
        sessionStorage.removeItem(memory);
        return;
      }
      s.order = order;
      s.lines = order.lines.map((l) => ({ sku: l.sku, qty: l.qty }));
      if (cardId) s.card = await api.call<PaymentView>('GET', `/v1/payments/${cardId}`);
      if (order.status === 'paid') s.screen = 'complete';
      else if (s.card && ['pending', 'unknown', 'suspense', 'disputed'].includes(s.card.status)) s.screen = 'card';
      await requote().catch(() => undefined);
    } catch {
      sessionStorage.removeItem(memory);
    }
  }

  function reset() {
    Object.assign(s, {
      screen: 'basket',
      lines: [],
      names: {},
      quote: null,
      coupon: '',
      order: null,
      card: null,
      cash: null,
      acceptUnknownCard: false,
      message: null,
      busy: false,
    });
  }

  return { s, paid, locked, requote, lookup, addSku, setQty, ensureOrder, refreshOrder, backToBasket, reset, resume };
}

export type Sale = ReturnType<typeof useSale>;
