import { Foundation1764000000000 } from './1764000000000-Foundation';

/** Every migration, in order. Listed explicitly so the same list runs under ts-jest, ts-node and dist. */
export const migrations = [Foundation1764000000000];
