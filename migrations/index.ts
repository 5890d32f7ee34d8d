import { Foundation1764000000000 } from './1764000000000-Foundation';
import { Ticketing1764000000100 } from './1764000000100-Ticketing';
import { StockCount1764000000200 } from './1764000000200-StockCount';
import { Returns1764000000600 } from './1764000000600-Returns';

/** Every migration, in order. Listed explicitly so the same list runs under ts-jest, ts-node and dist. */
export const migrations = [Foundation1764000000000, Ticketing1764000000100, StockCount1764000000200, Returns1764000000600];
