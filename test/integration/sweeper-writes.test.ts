/**
 * The sweeper's shared transactions (src/sweeper/writes.ts): units of work that arrive together are
 * committed together, a refusal undoes only its own unit, and a failure that is not a refusal sends
 * every unit of the batch to a transaction of its own.
 */
import { rows } from '../../src/db/db';
import { DomainError } from '../../src/shared/errors';
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
  const writes = () => new SweepWrites(f.db, { instanceId: 't', claimMs: 1000, maxSize: 16, maxWaitMs: 20 });
  const insert = (id: string) => (m: Parameters<Parameters<SweepWrites['write']>[0]>[0]) =>
    m.query('INSERT INTO sw_t (id, n) VALUES (?, 1)', [id]).then(() => id);

  it('a refused unit is undone alone; its neighbours in the same transaction commit', async () => {
    const w = writes();
    const rs = await Promise.all([
      settle(w.write(insert('a'))),
      settle(
        w.write(async (m) => {
          await insert('b')(m);
          throw new DomainError(409, 'payment_changed', 'changed meanwhile');
        }),
      ),
      settle(w.write(insert('c'))),
    ]);
    expect(rs.map((r) => (r.ok ? r.v : (r.e as DomainError).code))).toEqual(['a', 'payment_changed', 'c']);
    expect(await ids()).toEqual(['a', 'c']);
    expect(w.stats).toEqual({ batches: 1, units: 3, fallbacks: 0 });
  });

  it('a failure that is not a refusal runs every unit of the batch again on its own', async () => {
    const w = writes();
    const rs = await Promise.all([
      settle(w.write(insert('a'))),
      settle(
        w.write(
          async (m) => {
            await insert('b')(m);
            throw new Error('boom');
          },
          { refusable: false },
        ),
      ),
      settle(w.write(insert('c'))),
    ]);
    expect(rs.map((r) => (r.ok ? r.v : (r.e as Error).message))).toEqual(['a', 'boom', 'c']);
    expect(await ids()).toEqual(['a', 'c']);
    expect(w.stats.fallbacks).toBe(1);
  });
});
