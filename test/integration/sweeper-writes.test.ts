/**
 * The sweeper's shared transactions (src/sweeper/writes.ts): verdicts that arrive together are
 * committed together, a refusal is only its own verdict's answer, and a failure that is not a refusal
 * sends every verdict of the batch to a transaction of its own.
 */
import { rows } from '../../src/db/db';
import { DomainError } from '../../src/shared/errors';
import { Outcome } from '../../src/db/batch';
import type { SettleVerdict } from '../../src/payments/settle-batch';
import { SweepWrites } from '../../src/sweeper/writes';
import { freshDb, FreshDb, testDbKinds } from '../support/dbs';

const settle = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );

describe.each(testDbKinds())('sweeper writes share transactions, on $name', ({ name }) => {
  let f: FreshDb;
  beforeAll(async () => {
    f = await freshDb(name);
    await f.db.ds.query('CREATE TABLE sw_t (id VARCHAR(10) PRIMARY KEY, n INT NOT NULL)');
  });
  afterAll(async () => {
    await f?.drop();
  });
  beforeEach(async () => {
    await f.db.ds.query('DELETE FROM sw_t');
  });
  const ids = async () =>
    (await f.db.read((m) => rows<{ id: string }>(m, 'SELECT id FROM sw_t ORDER BY id'))).map((r) => r.id);
  /**
   * A stand-in for PaymentsService.settleManyIn: each verdict inserts its payment id; one whose id
   * starts with "refuse" is refused after writing nothing, one that starts with "boom" throws.
   */
  const writes = () =>
    new SweepWrites(f.db, { instanceId: 't', claimMs: 1000, maxSize: 16, maxWaitMs: 20 }, async (m, verdicts) => {
      const out: Outcome<boolean>[] = [];
      for (const v of verdicts) {
        if (v.paymentId.startsWith('refuse')) {
          out.push({ ok: false, error: new DomainError(409, 'payment_transition_refused', 'settled meanwhile') });
          continue;
        }
        await m.query('INSERT INTO sw_t (id, n) VALUES (?, 1)', [v.paymentId]);
        if (v.paymentId.startsWith('boom')) throw new Error('boom');
        out.push({ ok: true, value: true });
      }
      return out;
    });
  const verdict = (paymentId: string): SettleVerdict => ({
    kind: 'fail',
    paymentId,
    to: 'declined',
    info: { reason: 'test' },
    actor: 't',
  });

  it('a refused verdict is answered alone; its neighbours in the same transaction commit', async () => {
    const w = writes();
    const rs = await Promise.all(['a', 'refuse-b', 'c'].map((id) => settle(w.settle(verdict(id)))));
    expect(rs.map((r) => (r.ok ? r.v : (r.e as DomainError).code))).toEqual([true, 'payment_transition_refused', true]);
    expect(await ids()).toEqual(['a', 'c']);
    expect(w.stats).toEqual({ batches: 1, units: 3, fallbacks: 0 });
  });

  it('a failure that is not a refusal runs every verdict of the batch again on its own', async () => {
    const w = writes();
    const rs = await Promise.all(['a', 'boom-b', 'c'].map((id) => settle(w.settle(verdict(id)))));
    expect(rs.map((r) => (r.ok ? r.v : (r.e as Error).message))).toEqual([true, 'boom', true]);
    expect(await ids()).toEqual(['a', 'c']);
    expect(w.stats.fallbacks).toBe(1);
  });
});
