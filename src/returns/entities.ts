import type { EntityClass } from '../db/registry';
import { Coupon } from '../coupons/coupon.entity';
import { OrderReturn, ReturnLine } from './return.entity';
import { RefundLeg } from './refund-leg.entity';

/** Coupons, returns and refund legs (kept apart from index.ts so the data source imports entities only). */
export const returnsEntities: EntityClass[] = [Coupon, OrderReturn, ReturnLine, RefundLeg];
