import { CoreContext, Extension } from '../extensions';
import { Router } from 'express';
import { couponsRoutes } from '../coupons/coupons.routes';
import { RefundLegDriver } from './refund-legs';
import { ReturnsService } from './returns.service';
import { returnsRoutes } from './returns.routes';

/** Coupons, returns and refund legs: routes, the paid hook that consumes a coupon use, the sweep step for legs. */
export function returnsExtension(ctx: CoreContext): Extension {
  const legs = new RefundLegDriver(
    ctx.db,
    ctx.terminals ?? new Map(),
    ctx.acquirer ?? null,
    ctx.clock,
    ctx.log,
    ctx.cards ?? null,
  );
  legs.useMoneyTime((m, lanes) => ctx.payments.moneyTime(m, lanes));
  const returns = new ReturnsService(ctx.db, ctx.inventory, ctx.orders, ctx.clock, legs);
  ctx.orders.useRefunder(returns);
  // The coupon use an order reserved becomes used in the transaction that marks it paid.
  ctx.payments.onOrderPaid({
    appliesTo: (order) => !!order.couponCode,
    run: (m, order, now) => ctx.orders.coupons.consume(m, order.id, order.couponCode!, now),
  });
  ctx.sweeper?.addStep('refundLegs', () => legs.sweep());
  const router = Router();
  router.use(couponsRoutes(ctx.orders.coupons));
  router.use(returnsRoutes(returns));
  return { name: 'returns', router, service: returns };
}
