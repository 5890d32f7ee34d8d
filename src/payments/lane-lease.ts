import { Db, exec, rows } from '../db/db';
import { Clock } from '../shared/clock';
import { Logger } from '../shared/logger';

export interface LaneLeaseOptions {
  instanceId: string;
  /** How long a lease lasts without renewal (default 30 s). */
  leaseMs: number;
  /** How often the holder renews and a waiting instance tries again (default 10 s). */
  renewMs: number;
}

/**
 * One lane's terminal is driven by one instance at a time: the instance that holds the lane's row in
 * `lane_lease` with `lease_until` in the future. A lease nobody renews has no live owner, so any
 * instance may treat what that lane left `pending` as unknown. A second instance configured for the
 * same lane keeps trying and drives nothing there until it wins.
 */
export class LaneLeases {
  /** lane → lease_until as this instance last wrote it. */
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private won: ((lanes: string[]) => Promise<void>) | null = null;
  private ticking: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly lanes: readonly string[],
    readonly opts: LaneLeaseOptions,
  ) {}

  get instanceId(): string {
    return this.opts.instanceId;
  }

  /** Called with the lanes this instance has just won (it recovers what they left pending, then drives them). */
  onWon(fn: (lanes: string[]) => Promise<void>): void {
    this.won = fn;
  }

  /** Takes or renews every configured lane it can; returns the lanes won by this call. */
  async tick(): Promise<string[]> {
    if (this.ticking) {
      await this.ticking;
      return [];
    }
    let newly: string[] = [];
    this.ticking = (async () => {
      newly = await this.acquire();
      if (newly.length && this.won) await this.won(newly);
    })().finally(() => {
      this.ticking = null;
    });
    await this.ticking;
    return newly;
  }

  private async acquire(): Promise<string[]> {
    const newly: string[] = [];
    for (const lane of this.lanes) {
      const now = this.clock.now().getTime();
      const until = now + this.opts.leaseMs;
      try {
        const ok = await this.db.tx(async (m) => {
          const n = await exec(
            m,
            'UPDATE lane_lease SET instance_id = ?, lease_until = ?, updated_at = ? WHERE lane = ? AND (instance_id = ? OR lease_until < ?)',
            [this.opts.instanceId, until, now, lane, this.opts.instanceId, now],
          );
          if (n === 1) return true;
          const exists = await rows(m, 'SELECT 1 AS x FROM lane_lease WHERE lane = ?', [lane]);
          if (exists.length) return false;
          await exec(m, 'INSERT INTO lane_lease (lane, instance_id, lease_until, updated_at) VALUES (?, ?, ?, ?)', [
            lane,
            this.opts.instanceId,
            until,
            now,
          ]);
          return true;
        });
        if (ok) {
          if (!this.held.has(lane)) newly.push(lane);
          this.held.set(lane, until);
        } else if (this.held.delete(lane)) {
          this.log.warn('lost the lease of a lane to another instance; no longer driving it', { lane });
        }
      } catch (err) {
        // A duplicate insert means another instance took it at the same moment: try again on the next tick.
        this.log.warn('could not take or renew a lane lease', { lane, err: String(err) });
      }
    }
    if (newly.length) this.log.info('driving lanes', { lanes: newly, instanceId: this.opts.instanceId });
    return newly;
  }

  /** True while this instance's lease of the lane is unexpired (checked against the clock, not only the last write). */
  holds(lane: string): boolean {
    const until = this.held.get(lane);
    return until !== undefined && until > this.clock.now().getTime();
  }

  /** Holds the lane, renewing first when the lease is close to its end (a request must not outlive it). */
  async ensure(lane: string): Promise<boolean> {
    if (!this.lanes.includes(lane)) return false;
    const until = this.held.get(lane);
    if (until !== undefined && until - this.clock.now().getTime() > this.opts.leaseMs - this.opts.renewMs * 1.5)
      return true;
    await this.tick();
    return this.holds(lane);
  }

  heldLanes(): string[] {
    return this.lanes.filter((l) => this.holds(l));
  }

  start(): void {
    if (this.timer || this.lanes.length === 0) return;
    this.timer = setInterval(() => {
      void this.tick().catch((err) => this.log.error('lane lease tick failed', { err: String(err) }));
    }, this.opts.renewMs);
    this.timer.unref();
  }

  /** Stops renewing and gives the lanes up, so another instance can take them at once. */
  async stop(release = true): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking?.catch(() => undefined);
    const mine = [...this.held.keys()];
    this.held.clear();
    if (!release || mine.length === 0) return;
    await this.db
      .tx(async (m) => {
        for (const lane of mine)
          await exec(m, 'UPDATE lane_lease SET lease_until = 0 WHERE lane = ? AND instance_id = ?', [
            lane,
            this.opts.instanceId,
          ]);
      })
      .catch((err) => this.log.warn('could not release lane leases', { err: String(err) }));
  }
}

/** Lanes whose lease is live (some instance drives them), by any instance's view of the database. */
export async function drivenLanes(db: Db, now: number): Promise<Set<string>> {
  const live = await db.read((m) =>
    rows<{ lane: string }>(m, 'SELECT lane FROM lane_lease WHERE lease_until >= ?', [now]),
  );
  return new Set(live.map((r) => r.lane));
}
