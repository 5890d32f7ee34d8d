import { EntityManager } from 'typeorm';
import { Db, exec } from '../db/db';
import { audit } from '../audit/audit.service';
import { Clock } from '../shared/clock';
import { DomainError, conflict, notFound, unprocessable } from '../shared/errors';
import { Coupon, CouponKind } from './coupon.entity';
import { percentOf, splitByLargestRemainder } from './split';

export interface CouponInput {
  kind: CouponKind;
  amountFen?: number;
  percent?: number;
  minSubtotalFen?: number;
  skus?: string[];
  validFrom?: string;
  validTo?: string;
  maxUses?: number;
}

export interface CouponView {
  code: string;
  kind: CouponKind;
  amountFen: number | null;
  percent: number | null;
  minSubtotalFen: number | null;
  skus: string[] | null;
  validFrom: string | null;
  validTo: string | null;
  maxUses: number | null;
  used: number;
  reserved: number;
  remaining: number | null;
}

export interface PricedLine {
  lineNo: number;
  sku: string;
  amountFen: number;
}

/** What a coupon takes off an order: the order-level discount and its exact split per line. */
export interface CouponDiscount {
  code: string;
  discountFen: number;
  byLine: Map<number, number>;
}

export class CouponsService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async upsert(code: string, input: CouponInput, actor: string): Promise<CouponView> {
    if (input.kind === 'amount_off' && !input.amountFen)
      throw unprocessable('invalid_coupon', 'an amount_off coupon needs amountFen > 0');
    if (input.kind === 'percent_off' && !input.percent)
      throw unprocessable('invalid_coupon', 'a percent_off coupon needs percent (0–100]');
    const from = input.validFrom ? Date.parse(input.validFrom) : null;
    const to = input.validTo ? Date.parse(input.validTo) : null;
    if (from !== null && to !== null && to <= from)
      throw unprocessable('invalid_coupon', 'validTo must be after validFrom');
    return this.db.tx(async (m) => {
      const now = this.clock.now().getTime();
      const before = await m.findOne(Coupon, { where: { code } });
      const fields = {
        kind: input.kind,
        amountFen: input.kind === 'amount_off' ? input.amountFen! : null,
        percentBp: input.kind === 'percent_off' ? Math.round(input.percent! * 100) : null,
        minSubtotalFen: input.minSubtotalFen ?? null,
        skus: input.skus?.length ? JSON.stringify([...new Set(input.skus)]) : null,
        validFrom: from,
        validTo: to,
        maxUses: input.maxUses ?? null,
        updatedAt: now,
      };
      if (before) await m.update(Coupon, { code }, fields);
      else await m.insert(Coupon, { code, ...fields, used: 0, reserved: 0, createdBy: actor, createdAt: now });
      const after = await m.findOneOrFail(Coupon, { where: { code } });
      await audit(m, {
        actor,
        entity: 'coupon',
        entityId: code,
        action: before ? 'update' : 'create',
        before: before ? toView(before) : undefined,
        after: toView(after),
        at: now,
      });
      return toView(after);
    });
  }

  /** A page of coupons in code order; `next` is the last code shown, or null on the last page. */
  async list(after: string | undefined, limit: number): Promise<{ coupons: CouponView[]; next: string | null }> {
    const found = await this.db.read((m) =>
      m
        .createQueryBuilder(Coupon, 'c')
        .where(after === undefined ? '1 = 1' : 'c.code > :after', { after })
        .orderBy('c.code', 'ASC')
        .limit(limit + 1)
        .getMany(),
    );
    const coupons = found.slice(0, limit).map(toView);
    return { coupons, next: found.length > limit ? coupons[coupons.length - 1].code : null };
  }

  async get(code: string): Promise<CouponView> {
    const c = await this.db.read((m) => m.findOne(Coupon, { where: { code } }));
    if (!c) throw notFound('coupon', code);
    return toView(c);
  }

  /**
   * Prices a coupon on an order's lines and reserves one use of it, inside the order's transaction:
   * 422 unknown_coupon, 422 coupon_not_applicable (details.why: window, minimum, no_eligible_line),
   * 409 coupon_exhausted. The use is taken by one guarded conditional UPDATE, never read-modify-write.
   */
  async applyToOrder(m: EntityManager, code: string, lines: PricedLine[], now: number): Promise<CouponDiscount> {
    const c = await m.findOne(Coupon, { where: { code } });
    const discount = priceCoupon(c, code, lines, now);
    await reserveCouponUse(m, code, now);
    return discount;
  }

  /** The order was paid: its reserved use becomes a used one, once (the order's coupon_use guards it). */
  async consume(m: EntityManager, orderId: string, code: string, now: number): Promise<void> {
    const n = await exec(m, "UPDATE orders SET coupon_use = 'used' WHERE id = ? AND coupon_use = 'reserved'", [
      orderId,
    ]);
    if (n !== 1) return;
    await exec(
      m,
      'UPDATE coupon SET reserved = reserved - 1, used = used + 1, updated_at = ? WHERE code = ? AND reserved > 0',
      [now, code],
    );
  }

  /** The order was cancelled or expired before it was paid: its use goes back, once. */
  async giveBack(m: EntityManager, orderId: string, code: string, now: number): Promise<void> {
    const n = await exec(m, "UPDATE orders SET coupon_use = 'released' WHERE id = ? AND coupon_use = 'reserved'", [
      orderId,
    ]);
    if (n !== 1) return;
    await exec(m, 'UPDATE coupon SET reserved = reserved - 1, updated_at = ? WHERE code = ? AND reserved > 0', [
      now,
      code,
    ]);
  }
}

/**
 * What a coupon takes off these lines, without touching the database (the batched order path prices
 * many orders against one read of the coupon): 422 unknown_coupon, 422 coupon_not_applicable.
 */
export function priceCoupon(
  c: Pick<Coupon, 'kind' | 'amountFen' | 'percentBp' | 'minSubtotalFen' | 'skus' | 'validFrom' | 'validTo'> | null,
  code: string,
  lines: PricedLine[],
  now: number,
): CouponDiscount {
  if (!c) throw unprocessable('unknown_coupon', `there is no coupon ${code}`, { code });
  if ((c.validFrom !== null && now < c.validFrom) || (c.validTo !== null && now >= c.validTo)) {
    throw notApplicable(code, 'window', 'the coupon is not valid at this time', {
      validFrom: iso(c.validFrom),
      validTo: iso(c.validTo),
    });
  }
  const skus: string[] | null = c.skus ? JSON.parse(c.skus) : null;
  const eligible = lines.filter((l) => !skus || skus.includes(l.sku)).sort((a, b) => a.lineNo - b.lineNo);
  if (eligible.length === 0)
    throw notApplicable(code, 'no_eligible_line', 'no line of this order is one the coupon applies to', { skus });
  const eligibleFen = eligible.reduce((s, l) => s + l.amountFen, 0);
  if (c.minSubtotalFen !== null && eligibleFen < c.minSubtotalFen) {
    throw notApplicable(
      code,
      'minimum',
      `the coupon needs ${c.minSubtotalFen} fen of eligible goods; this order has ${eligibleFen}`,
      { minSubtotalFen: c.minSubtotalFen, eligibleFen },
    );
  }
  // Rounded once, at order level; a discount never exceeds what it applies to.
  const discountFen = Math.min(
    eligibleFen,
    c.kind === 'amount_off' ? c.amountFen! : percentOf(eligibleFen, c.percentBp!),
  );
  const parts = splitByLargestRemainder(
    discountFen,
    eligible.map((l) => l.amountFen),
  );
  return { code, discountFen, byLine: new Map(eligible.map((l, i) => [l.lineNo, parts[i]])) };
}

/**
 * Reserves one use of a coupon in the caller's transaction: a single guarded conditional UPDATE, so
 * 500 concurrent orders for 20 uses get exactly 20. Callable on its own (batched order creation).
 */
export async function reserveCouponUse(m: EntityManager, code: string, now: number): Promise<void> {
  const n = await exec(
    m,
    'UPDATE coupon SET reserved = reserved + 1, updated_at = ? WHERE code = ? AND (max_uses IS NULL OR used + reserved < max_uses)',
    [now, code],
  );
  if (n !== 1) throw conflict('coupon_exhausted', `coupon ${code} has no uses left`, { code });
}

function notApplicable(code: string, why: string, message: string, extra: Record<string, unknown> = {}): DomainError {
  return unprocessable('coupon_not_applicable', `coupon ${code}: ${message}`, { code, why, ...extra });
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function toView(c: Coupon): CouponView {
  return {
    code: c.code,
    kind: c.kind,
    amountFen: c.amountFen,
    percent: c.percentBp === null ? null : c.percentBp / 100,
    minSubtotalFen: c.minSubtotalFen,
    skus: c.skus ? JSON.parse(c.skus) : null,
    validFrom: iso(c.validFrom),
    validTo: iso(c.validTo),
    maxUses: c.maxUses,
    used: c.used,
    reserved: c.reserved,
    remaining: c.maxUses === null ? null : Math.max(0, c.maxUses - c.used - c.reserved),
  };
}
