/**
 * db.runAll sends a batch's statements together (one multi-statement query on MySQL/MariaDB) and
 * db.tx opens the transaction with its first statement: each statement's rows and changed-row count
 * come back in order, a guard that does not hold rolls the whole transaction back, and a statement
 * that fails stops the rest.
 */
import { exec, rows, runAll, runAllAndCommit } from '../../src/db/db';
import { FreshDb, freshDb, testDbKinds } from '../support/dbs';

describe.each(testDbKinds())('db.runAll on $name', ({ name }) => {
  let f: FreshDb;
  beforeAll(async () => {
    f = await freshDb(name);
    await f.db.tx((m) =>
      exec(
        m,
        "INSERT INTO sku (sku, name, kind, price_fen, on_hand, reserved, created_at, updated_at) VALUES ('A', 'a', 'goods', 100, 5, 0, 0, 0), ('B', 'b', 'goods', 100, 5, 0, 0, 0)",
      ),
    );
  });
  afterAll(async () => {
    await f?.drop();
  });
  const level = async (sku: string) =>
    Number(
      (await f.db.read((m) => rows<{ reserved: unknown }>(m, 'SELECT reserved FROM sku WHERE sku = ?', [sku])))[0]
        .reserved,
    );

  it('answers each statement in order: rows for a read, the changed-row count for a write', async () => {
    const r = await f.db.tx((m) =>
      runAll(m, [
        { sql: 'SELECT sku, on_hand FROM sku WHERE sku IN (?, ?) ORDER BY sku', params: ['A', 'B'] },
        { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku IN (?, ?)', params: ['A', 'B'] },
        { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', params: ['nope'] },
        { sql: 'SELECT reserved FROM sku WHERE sku = ?', params: ['A'] },
      ]),
    );
    expect(r.map((x) => x.changed)).toEqual([0, 2, 0, 0]);
    expect(r[0].rows.map((x) => [x.sku, Number(x.on_hand)])).toEqual([
      ['A', 5],
      ['B', 5],
    ]);
    expect(Number(r[3].rows[0].reserved)).toBe(1); // sees the UPDATE before it in the same call
  });

  it('a guard that does not hold throws its error and the transaction, earlier statements included, rolls back', async () => {
    const before = [await level('A'), await level('B')];
    await expect(
      f.db.tx((m) =>
        runAll(m, [
          { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', params: ['A'] },
          {
            sql: 'UPDATE sku SET reserved = reserved + 10 WHERE sku = ? AND on_hand - reserved >= 10',
            params: ['B'],
            guard: { rows: 1, error: () => new Error('not enough B') },
          },
        ]),
      ),
    ).rejects.toThrow('not enough B');
    expect([await level('A'), await level('B')]).toEqual(before);
  });

  it('a failing statement stops the rest and fails the transaction', async () => {
    const before = await level('A');
    await expect(
      f.db.tx((m) =>
        runAll(m, [
          { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', params: ['A'] },
          { sql: 'INSERT INTO sku (sku) VALUES (?)', params: ['A'] }, // duplicate key (and missing columns)
          { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', params: ['A'] },
        ]),
      ),
    ).rejects.toThrow();
    expect(await level('A')).toBe(before);
  });

  it('a transaction whose first statement is a read sees its own later writes, and commits them', async () => {
    const before = await level('B');
    const seen = await f.db.tx(async (m) => {
      const first = await rows<{ reserved: unknown }>(m, 'SELECT reserved FROM sku WHERE sku = ?', ['B']);
      await exec(m, 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', ['B']);
      const again = await rows<{ reserved: unknown }>(m, 'SELECT reserved FROM sku WHERE sku = ?', ['B']);
      return [Number(first[0].reserved), Number(again[0].reserved)];
    });
    expect(seen).toEqual([before, before + 1]);
    expect(await level('B')).toBe(before + 1);
  });

  it('runAllAndCommit: answers in order around its guards, and on MySQL the writes are committed when it returns', async () => {
    const before = await level('A');
    const seen = await f.db.tx(async (m) => {
      const r = await runAllAndCommit(m, [
        {
          sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ? AND on_hand - reserved >= 1',
          params: ['A'],
          guard: { rows: 1, error: () => new Error('no A left') },
        },
        { sql: 'SELECT reserved FROM sku WHERE sku = ?', params: ['A'] },
      ]);
      expect(r.map((x) => x.changed)).toEqual([1, 0]);
      expect(Number(r[1].rows[0].reserved)).toBe(before + 1);
      // Another connection already sees it: the COMMIT went with the statements (on SQLite, db.tx commits).
      return f.db.kind === 'mysql' ? level('A') : before + 1;
    });
    expect(seen).toBe(before + 1);
    expect(await level('A')).toBe(before + 1);
  });

  it('runAllAndCommit: a guard that does not hold stops the packet before its COMMIT, throws its error, and nothing is kept', async () => {
    const before = [await level('A'), await level('B')];
    await expect(
      f.db.tx((m) =>
        runAllAndCommit(m, [
          { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', params: ['A'] },
          {
            sql: 'UPDATE sku SET reserved = reserved + 10 WHERE sku = ? AND on_hand - reserved >= 10',
            params: ['B'],
            guard: { rows: 1, error: () => new Error('not enough B') },
          },
          { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', params: ['B'] },
        ]),
      ),
    ).rejects.toThrow('not enough B');
    expect([await level('A'), await level('B')]).toEqual(before);
  });

  it('runAllAndCommit refuses a statement with a subquery, which could fail as a guard does (error 1242), and sends nothing', async () => {
    const before = await level('A');
    await expect(
      f.db.tx((m) =>
        runAllAndCommit(m, [
          { sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = ?', params: ['A'] },
          {
            sql: 'UPDATE sku SET reserved = reserved + 1 WHERE sku = (SELECT sku FROM sku WHERE on_hand = ?)',
            params: [5],
            guard: { rows: 1, error: () => new Error('taken for a guard') },
          },
        ]),
      ),
    ).rejects.toThrow(/no statement with a subquery/);
    expect(await level('A')).toBe(before);
  });
});
