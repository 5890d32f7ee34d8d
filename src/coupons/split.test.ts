import fc from 'fast-check';
import { percentOf, roundDownToJiao, splitByLargestRemainder, unitsRefund } from './split';
import { refundablePerLine } from '../returns/returns.service';

describe('splitByLargestRemainder', () => {
  it('gives the leftover fen to the largest remainders, ties to the lower line', () => {
    expect(splitByLargestRemainder(100, [1, 1, 1])).toEqual([34, 33, 33]);
    expect(splitByLargestRemainder(10, [3, 3, 4])).toEqual([3, 3, 4]);
    expect(splitByLargestRemainder(1, [5, 5])).toEqual([1, 0]);
  });

  it('parts sum exactly, are never negative, and never exceed a proportional share by a fen or more', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10_000_000 }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 1_000_000_000 }),
        (weights, raw) => {
          const sum = weights.reduce((s, w) => s + w, 0);
          const total = raw % (sum + 1);
          const parts = splitByLargestRemainder(total, weights);
          expect(parts.reduce((s, p) => s + p, 0)).toBe(total);
          parts.forEach((p, i) => {
            expect(p).toBeGreaterThanOrEqual(0);
            expect(Math.abs(p - (total * weights[i]) / sum)).toBeLessThan(1);
            expect(p).toBeLessThanOrEqual(weights[i]);
          });
        },
      ),
    );
  });
});

describe('percentOf', () => {
  it('rounds once, half up', () => {
    expect(percentOf(8250, 1500)).toBe(1238); // 1237.5 → 1238
    expect(percentOf(8249, 1500)).toBe(1237); // 1237.35
    expect(percentOf(1, 5000)).toBe(1); // 0.5 → 1
  });
});

describe('unitsRefund', () => {
  it('splits a line net over its units so any run of returns sums to the net', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 50 }),
        (net, qty, chunks) => {
          let from = 0;
          let refunded = 0;
          for (const c of chunks) {
            const k = Math.min(c, qty - from);
            if (k === 0) break;
            refunded += unitsRefund(net, qty, from, k);
            from += k;
          }
          const rest = qty - from;
          const all = refunded + unitsRefund(net, qty, from, rest);
          expect(all).toBe(net);
          expect(refunded).toBeLessThanOrEqual(net);
        },
      ),
    );
  });

  it('a run of units refunds exactly the sum of its single units (no unit counted twice or skipped)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 1, max: 60 }),
        fc.nat(),
        fc.nat(),
        (net, qty, a, b) => {
          const from = a % qty;
          const count = b % (qty - from + 1);
          let single = 0;
          for (let u = from; u < from + count; u++) single += unitsRefund(net, qty, u, 1);
          expect(unitsRefund(net, qty, from, count)).toBe(single);
        },
      ),
    );
  });

  it('refuses units beyond the line', () => {
    expect(() => unitsRefund(100, 2, 1, 2)).toThrow();
  });
});

/** A whole sale: a basket, a coupon, cash rounding or not, then any sequence of partial returns. */
describe('sale and returns, as a property', () => {
  const basket = fc.array(
    fc.record({
      qty: fc.integer({ min: 1, max: 20 }),
      unitPriceFen: fc.integer({ min: 0, max: 100_000 }),
      eligible: fc.boolean(),
    }),
    { minLength: 1, maxLength: 12 },
  );
  const coupon = fc.oneof(
    fc.record({ kind: fc.constant('amount_off' as const), value: fc.integer({ min: 1, max: 5_000_000 }) }),
    fc.record({ kind: fc.constant('percent_off' as const), value: fc.integer({ min: 1, max: 10_000 }) }),
  );
  const returnsSeq = fc.array(fc.record({ line: fc.nat(), qty: fc.integer({ min: 1, max: 25 }) }), { maxLength: 40 });

  it('every split sums exactly, no unit is refunded twice, refunds never exceed what was paid and equal it when all comes back', () => {
    fc.assert(
      fc.property(basket, coupon, fc.boolean(), returnsSeq, (items, c, rounding, seq) => {
        const lines = items.map((it, i) => ({
          lineNo: i + 1,
          qty: it.qty,
          unitPriceFen: it.unitPriceFen,
          discountFen: 0,
          eligible: it.eligible || i === 0,
        }));
        const eligible = lines.filter((l) => l.eligible);
        const eligibleFen = eligible.reduce((s, l) => s + l.qty * l.unitPriceFen, 0);
        const discount = Math.min(eligibleFen, c.kind === 'amount_off' ? c.value : percentOf(eligibleFen, c.value));
        const parts =
          eligibleFen === 0
            ? eligible.map(() => 0)
            : splitByLargestRemainder(
                discount,
                eligible.map((l) => l.qty * l.unitPriceFen),
              );
        eligible.forEach((l, i) => {
          l.discountFen = parts[i];
        });
        expect(lines.reduce((s, l) => s + l.discountFen, 0)).toBe(discount);
        const subtotal = lines.reduce((s, l) => s + l.qty * l.unitPriceFen, 0);
        const totalFen = subtotal - discount;
        const roundingFen = rounding ? totalFen - roundDownToJiao(totalFen) : 0;
        const paid = totalFen - roundingFen;
        const refundable = refundablePerLine({ totalFen, roundingFen }, lines);
        expect([...refundable.values()].reduce((s, v) => s + v, 0)).toBe(paid);

        const returned = new Map(lines.map((l) => [l.lineNo, 0]));
        let refunded = 0;
        for (const r of seq) {
          const l = lines[r.line % lines.length];
          const k = Math.min(r.qty, l.qty - returned.get(l.lineNo)!);
          if (k === 0) continue;
          refunded += unitsRefund(refundable.get(l.lineNo)!, l.qty, returned.get(l.lineNo)!, k);
          returned.set(l.lineNo, returned.get(l.lineNo)! + k);
          expect(refunded).toBeLessThanOrEqual(paid);
        }
        for (const l of lines) {
          refunded += unitsRefund(
            refundable.get(l.lineNo)!,
            l.qty,
            returned.get(l.lineNo)!,
            l.qty - returned.get(l.lineNo)!,
          );
        }
        expect(refunded).toBe(paid);
      }),
      { numRuns: 300 },
    );
  });
});
