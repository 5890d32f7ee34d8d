import { Batcher, Outcome, multiRowInsert } from './batch';

const settle = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );

describe('Batcher', () => {
  it('gathers concurrent inputs into one batch and answers each with its own outcome', async () => {
    const sizes: number[] = [];
    const b = new Batcher<number, number>({
      name: 't',
      maxSize: 100,
      maxWaitMs: 5,
      maxInFlight: 1,
      applyBatch: async (xs) => {
        sizes.push(xs.length);
        return xs.map((x): Outcome<number> =>
          x % 2 ? { ok: false, error: new Error(`odd ${x}`) } : { ok: true, value: x * 10 },
        );
      },
      applyOne: async () => {
        throw new Error('not expected');
      },
    });
    const rs = await Promise.all([1, 2, 3, 4].map((x) => settle(b.submit(x))));
    expect(sizes).toEqual([4]);
    expect(rs.map((r) => (r.ok ? r.v : (r.e as Error).message))).toEqual(['odd 1', 20, 'odd 3', 40]);
  });

  it('splits at maxSize and keeps at most maxInFlight batches running', async () => {
    let running = 0;
    let peak = 0;
    const sizes: number[] = [];
    const b = new Batcher<number, number>({
      name: 't',
      maxSize: 3,
      maxWaitMs: 1,
      maxInFlight: 2,
      applyBatch: async (xs) => {
        running++;
        peak = Math.max(peak, running);
        sizes.push(xs.length);
        await new Promise((r) => setTimeout(r, 10));
        running--;
        return xs.map((x) => ({ ok: true, value: x }));
      },
      applyOne: async (x) => x,
    });
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(i)));
    expect(rs).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    expect(sizes.reduce((a, c) => a + c, 0)).toBe(10);
    expect(peak).toBe(2);
    await b.idle();
  });

  it('retries every input on its own, in arrival order, when the batch throws', async () => {
    const single: number[] = [];
    const b = new Batcher<number, number>({
      name: 't',
      maxSize: 10,
      maxWaitMs: 1,
      maxInFlight: 1,
      applyBatch: async () => {
        throw new Error('deadlock after retries');
      },
      applyOne: async (x) => {
        single.push(x);
        if (x === 2) throw new Error('two is refused');
        return x;
      },
    });
    const fallbacks: boolean[] = [];
    (b as unknown as { opts: { onBatch: (i: { fallback: boolean }) => void } }).opts.onBatch = (i) =>
      fallbacks.push(i.fallback);
    const rs = await Promise.all([1, 2, 3].map((x) => settle(b.submit(x))));
    expect(single).toEqual([1, 2, 3]);
    expect(rs.map((r) => r.ok)).toEqual([true, false, true]);
    expect(fallbacks).toEqual([true]);
  });

  it('chunks multi-row INSERTs', () => {
    const qs = multiRowInsert(
      't',
      ['a', 'b'],
      Array.from({ length: 5 }, (_, i) => [i, i]),
      2,
    );
    expect(qs.map((q) => q.params.length)).toEqual([4, 4, 2]);
    expect(qs[2].sql).toBe('INSERT INTO t (`a`, `b`) VALUES (?, ?)');
  });
});
