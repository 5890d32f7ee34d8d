import { Foundation1764000000000 } from './1764000000000-Foundation';
import { Ticketing1764000000100 } from './1764000000100-Ticketing';
import { StockCount1764000000200 } from './1764000000200-StockCount';
import { SweeperOwnership1764000000300 } from './1764000000300-SweeperOwnership';
import { Api1764000000400 } from './1764000000400-Api';
import { Reconciliation1764000000500 } from './1764000000500-Reconciliation';
import { Returns1764000000600 } from './1764000000600-Returns';
import { Lane1764000000700 } from './1764000000700-Lane';
import { ReconCovering1764000000800 } from './1764000000800-ReconCovering';
import { IdempotencyRenewal1764000000900 } from './1764000000900-IdempotencyRenewal';
import { AcquirerQuiet1764000001000 } from './1764000001000-AcquirerQuiet';
import { ShiftMoneySeq1764000001100 } from './1764000001100-ShiftMoneySeq';

/** Every migration, in order. Listed explicitly so the same list runs under ts-jest, ts-node and dist. */
export const migrations = [
  Foundation1764000000000,
  Ticketing1764000000100,
  StockCount1764000000200,
  SweeperOwnership1764000000300,
  Api1764000000400,
  Reconciliation1764000000500,
  Returns1764000000600,
  Lane1764000000700,
  ReconCovering1764000000800,
  IdempotencyRenewal1764000000900,
  AcquirerQuiet1764000001000,
  ShiftMoneySeq1764000001100,
];
