import Decimal from 'decimal.js';

/**
 * Money splits that must add up to the fen: an order discount over its lines, a line's net over its
 * units, a collected amount over the lines. All pure; the property tests live beside them.
 */

/**
 * Splits `total` whole fen over `weights` in proportion, by largest remainder: each part gets the
 * floor of its exact share, then the fen left over go one each to the largest remainders, ties to
 * the lower index (the lower line number). Parts sum exactly to `total`.
 */
export function splitByLargestRemainder(total: number, weights: number[]): number[] {
  if (!Number.isSafeInteger(total) || total < 0) throw new Error(`cannot split ${total} fen`);
  const sum = weights.reduce((s, w) => s + w, 0);
  if (weights.length === 0 || sum === 0) {
    if (total === 0) return weights.map(() => 0);
    throw new Error('nothing to split over');
  }
  const exact = weights.map((w) => new Decimal(total).mul(w).div(sum));
  const parts = exact.map((e) => e.floor().toNumber());
  let left = total - parts.reduce((s, p) => s + p, 0);
  const order = exact
    .map((e, i) => ({ i, rem: e.minus(e.floor()) }))
    .sort((a, b) => b.rem.comparedTo(a.rem) || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    parts[i]++;
    left--;
  }
  return parts;
}

/** A percent (in basis points: 15 % = 1500) of `amountFen`, rounded once, half up. */
export function percentOf(amountFen: number, percentBp: number): number {
  return new Decimal(amountFen).mul(percentBp).div(10_000).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toNumber();
}

/**
 * The refund of units [from, from + count) of a line whose net is `netFen` over `qty` units. The
 * net is split over the units so they sum exactly: every unit gets floor(net / qty), and the first
 * net mod qty units one fen more. Returning every unit, in any number of returns, gives back the net.
 */
export function unitsRefund(netFen: number, qty: number, from: number, count: number): number {
  if (from < 0 || count < 0 || from + count > qty) throw new Error(`units ${from}+${count} are not within ${qty}`);
  const base = Math.floor(netFen / qty);
  const extra = netFen - base * qty;
  const withExtra = Math.max(0, Math.min(from + count, extra) - from);
  return base * count + withExtra;
}

/** Rounds a cash amount down to the jiao (抹零): what the customer hands over for `totalFen`. */
export const roundDownToJiao = (totalFen: number): number => totalFen - (totalFen % 10);
