import { hash, randomBytes } from 'node:crypto';
import { Db } from '../db/db';
import { audit } from '../audit/audit.service';
import { Clock } from '../shared/clock';
import { newId } from '../shared/ids';
import { ApiKey, Role } from './api-key.entity';

export interface Principal {
  id: string;
  role: Role;
  lane: string | null;
}

/** One-shot `crypto.hash` (node ≥ 20.12): every request hashes its key, and a Hash object per call cost more than the digest. */
export const hashKey = (raw: string) => hash('sha256', raw, 'hex');
const CACHE_MS = 30_000;
export const AUTH_CACHE_SIZE = 10_000;

/**
 * API keys. A lookup is one SHA-256 and, at most every 30 s per key, one indexed read. The cache is
 * an LRU of at most `cacheSize` entries keyed by the key's hash (a raw key is never kept in memory
 * past the request), so a flood of made-up keys evicts old entries instead of growing the heap.
 */
export class AuthService {
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly cacheSize = AUTH_CACHE_SIZE,
  ) {}

  /** The cached answer for this key, if fresh (no database read): lets the edge rate-limit only real misses. */
  cached(raw: string): { principal: Principal | null } | undefined {
    const h = hashKey(raw);
    const hit = this.cache.get(h);
    if (!hit || hit.until <= Date.now()) return undefined;
    this.cache.delete(h);
    this.cache.set(h, hit); // most recently used last
    return hit;
  }

  get cacheEntries(): number {
    return this.cache.size;
  }

  /** For tests: is anything keyed by this exact string? (Only hashes should be.) */
  cacheHas(k: string): boolean {
    return this.cache.has(k);
  }

  async create(
    input: { role: Role; lane?: string | null },
    actor: string,
    raw = `pos_${randomBytes(32).toString('base64url')}`,
  ): Promise<{ id: string; role: Role; lane: string | null; key: string }> {
    const now = this.clock.now().getTime();
    const row: ApiKey = Object.assign(new ApiKey(), {
      id: newId(),
      role: input.role,
      lane: input.lane ?? null,
      keyHash: hashKey(raw),
      createdAt: now,
      revokedAt: null,
    });
    await this.db.tx(async (m) => {
      await m.insert(ApiKey, row);
      await audit(m, {
        actor,
        entity: 'api_key',
        entityId: row.id,
        action: 'create',
        after: { role: row.role, lane: row.lane },
        at: now,
      });
    });
    return { id: row.id, role: row.role, lane: row.lane, key: raw };
  }

  /** Makes sure a key with exactly this value exists as admin (POS_ADMIN_KEY). */
  async bootstrapAdmin(raw: string): Promise<void> {
    const existing = await this.db.read((m) => m.findOne(ApiKey, { where: { keyHash: hashKey(raw) } }));
    if (existing) return;
    await this.create({ role: 'admin' }, 'system:bootstrap', raw);
  }

  async authenticate(raw: string): Promise<Principal | null> {
    const hit = this.cached(raw);
    if (hit) return hit.principal;
    const h = hashKey(raw);
    const row = await this.db.read((m) => m.findOne(ApiKey, { where: { keyHash: h } }));
    const principal = row && row.revokedAt == null ? { id: row.id, role: row.role, lane: row.lane } : null;
    this.cache.delete(h);
    while (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(h, { principal, until: Date.now() + CACHE_MS });
    return principal;
  }
}
