import fc from 'fast-check';
import { DomainError } from '../shared/errors';
import { HoldRequest, StockRow, allocate } from './reservation-batcher';

const SKUS = ['A', 'B', 'C', 'D'];

describe('allocate (one batch decided in memory)', () => {
  it('never hands out more than is available, decides each order all-or-nothing, greedily in arrival order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(20), { minLength: SKUS.length, maxLength: SKUS.length }),
        fc.array(
          fc.uniqueArray(fc.record({ sku: fc.constantFrom(...SKUS), qty: fc.integer({ min: 1, max: 8 }) }), {
            selector: (l) => l.sku,
            minLength: 1,
            maxLength: 3,
          }),
          { maxLength: 30 },
        ),
        (available, orders) => {
          const stock = new Map<string, StockRow>(
            SKUS.map((sku, i) => [sku, { sku, kind: 'goods', priceFen: 100, onHand: available[i] + 3, reserved: 3 }]),
          );
          const requests: HoldRequest[] = orders.map((lines, i) => ({
            orderId: `o${i}`,
            skuKind: 'goods',
            actor: 't',
            lines: lines.map((l, j) => ({ lineId: `o${i}l${j}`, ...l })),
          }));
          const { verdicts, totals } = allocate(stock, requests);
          // Replaying the verdicts one order at a time, in arrival order, against what is left:
          const left = new Map(SKUS.map((s, i) => [s, available[i]]));
          requests.forEach((r, i) => {
            const fits = r.lines.every((l) => left.get(l.sku)! >= l.qty);
            expect(verdicts[i].ok).toBe(fits);
            if (fits) for (const l of r.lines) left.set(l.sku, left.get(l.sku)! - l.qty);
          });
          for (const [i, sku] of SKUS.entries()) {
            expect(totals.get(sku) ?? 0).toBe(available[i] - left.get(sku)!);
            expect(totals.get(sku) ?? 0).toBeLessThanOrEqual(available[i]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an order refused by admit (a coupon with no uses left) takes no stock from the ones after it', () => {
    const stock = new Map<string, StockRow>([
      ['A', { sku: 'A', kind: 'goods', priceFen: 100, onHand: 2, reserved: 0 }],
    ]);
    const req = (i: number): HoldRequest => ({
      orderId: `o${i}`,
      skuKind: 'goods',
      actor: 't',
      lines: [{ lineId: `l${i}`, sku: 'A', qty: 1 }],
    });
    const { verdicts, totals } = allocate(stock, [req(0), req(1), req(2)], (i) =>
      i === 0 ? new DomainError(409, 'coupon_exhausted', 'no') : null,
    );
    expect(verdicts.map((v) => v.ok)).toEqual([false, true, true]);
    expect(totals.get('A')).toBe(2);
  });

  it('refuses a SKU of another kind as unknown (a seat is not goods)', () => {
    const stock = new Map<string, StockRow>([['S', { sku: 'S', kind: 'seat', priceFen: 100, onHand: 1, reserved: 0 }]]);
    const { verdicts } = allocate(stock, [
      { orderId: 'o', skuKind: 'goods', actor: 't', lines: [{ lineId: 'l', sku: 'S', qty: 1 }] },
    ]);
    expect(verdicts[0]).toMatchObject({ ok: false, error: { code: 'unknown_sku' } });
  });
});
