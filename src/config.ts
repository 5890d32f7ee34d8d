/** The service's environment (../shared/spec/service-contract.md), parsed once and checked. */
export interface Config {
  databaseUrl: string;
  host: string;
  port: number;
  adminKey: string | null;
  terminals: string;
  /** Lanes without a terminal (cash only) that orders may be rung up on: POS_LANES, comma-separated, default lane-1. */
  cashLanes: string[];
  acquirerUrl: string | null;
  sweepCron: string;
  terminalTRespMs: number;
  orderHoldSeconds: number;
  suspenseAfterSeconds: number;
  reversalGraceSeconds: number;
  /**
   * Unknown attempts the sweeper works at once: acquirer calls in flight (SWEEP_CONCURRENCY, default 64:
   * with 16, bench:sweep measured 400–460 resolutions/s here against 500–550 with 32; session 10, two
   * alternating pairs, 730 / 690 with 64 against 619 / 624 with 32; the verdicts of more attempts share
   * each transaction). A 37 from the acquirer (queries too frequent) stops the sweep for its minute.
   */
  sweepConcurrency: number;
  /** Unknown attempts one claim takes (SWEEP_BATCH_SIZE, default 200); a sweep claims again until a claim comes back short. */
  sweepBatchSize?: number;
  instanceId: string;
  /** How long an Idempotency-Key claimed by a request that never answered stays "in progress" (IDEMPOTENCY_LEASE_MS; the crash harness shortens it). */
  idempotencyLeaseMs?: number;
  /** POS_HOT_PATH: `off` sends the busiest routes through express's routing too (http/hot-path.ts); on by default. */
  hotPath?: boolean;
  /** CASH_ROUNDING: `jiao` rounds a cash-only payment down to the jiao (抹零); off by default. */
  cashRounding?: 'off' | 'jiao';
}

function int(env: NodeJS.ProcessEnv, name: string, dflt: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max)
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  return v;
}

function onOff(env: NodeJS.ProcessEnv, name: string, dflt: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (raw === 'on' || raw === 'off') return raw === 'on';
  throw new Error(`${name} must be on or off, got "${raw}"`);
}

function cashRounding(raw: string | undefined): 'off' | 'jiao' {
  if (raw === undefined || raw === '' || raw === 'off') return 'off';
  if (raw === 'jiao') return 'jiao';
  throw new Error(`CASH_ROUNDING must be off or jiao, got "${raw}"`);
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    databaseUrl: env.DATABASE_URL || 'sqlite:./data/pos.db',
    host: env.HOST || '127.0.0.1',
    port: int(env, 'PORT', 3000, 0, 65535),
    adminKey: env.POS_ADMIN_KEY || null,
    terminals: env.POS_TERMINALS ?? 'lane-1:sim',
    cashLanes: (env.POS_LANES ?? 'lane-1')
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean),
    acquirerUrl: env.ACQUIRER_URL || null,
    sweepCron: env.SWEEP_CRON || '* * * * *',
    terminalTRespMs: int(env, 'TERMINAL_T_RESP_MS', 60_000, 50, 600_000),
    orderHoldSeconds: int(env, 'ORDER_HOLD_SECONDS', 1800, 1, 30 * 86400),
    suspenseAfterSeconds: int(env, 'SUSPENSE_AFTER_SECONDS', 86400, 1, 90 * 86400),
    reversalGraceSeconds: int(env, 'REVERSAL_GRACE_SECONDS', 63, 0, 86400),
    sweepConcurrency: int(env, 'SWEEP_CONCURRENCY', 64, 1, 256),
    sweepBatchSize: int(env, 'SWEEP_BATCH_SIZE', 200, 1, 5000),
    cashRounding: cashRounding(env.CASH_ROUNDING),
    hotPath: onOff(env, 'POS_HOT_PATH', true),
    instanceId: env.POS_INSTANCE_ID || `${require('node:os').hostname()}:${process.pid}`,
    idempotencyLeaseMs: int(env, 'IDEMPOTENCY_LEASE_MS', 30_000, 1000, 3_600_000),
  };
}

/** A setting the service cannot start with: `pos` prints its message alone (no stack) and exits 2. */
export class ConfigError extends Error {}
