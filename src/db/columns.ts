import { ValueTransformer } from 'typeorm';

/**
 * BIGINT comes back from mysql2 as a string; fen and epoch-millisecond values stay far below 2^53,
 * so they are numbers in the domain. Inputs are validated as safe integers before they get here.
 */
export const bigintAsNumber: ValueTransformer = {
  to: (v: number | null | undefined) => v,
  from: (v: string | number | null) => (v === null || v === undefined ? v : Number(v)),
};

export const boolAsNumber: ValueTransformer = {
  to: (v: boolean | null | undefined) => (v === null || v === undefined ? v : v ? 1 : 0),
  from: (v: number | string | boolean | null) => (v === null || v === undefined ? v : Number(v) === 1 || v === true),
};
