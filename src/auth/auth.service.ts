import { createHash, randomBytes } from 'node:crypto';
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

const hashKey = (raw: string) => createHash('sha256').update(raw).digest('hex');
const CACHE_MS = 30_000;

/** API keys. A lookup is one SHA-256 and, at most every 30 s per key, one indexed read. */
export class AuthService {
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();

  constructor(private readonly db: Db, private readonly clock: Clock) {}

  async create(input: { role: Role; lane?: string | null }, actor: string, raw = `pos_${randomBytes(32).toString('base64url')}`): Promise<{ id: string; role: Role; lane: string | null; key: string }> {
    const now = this.clock.now().getTime();
    const row: ApiKey = Object.assign(new ApiKey(), { id: newId(), role: input.role, lane: input.lane ?? null, keyHash: hashKey(raw), createdAt: now, revokedAt: null });
    await this.db.tx(async (m) => {
      await m.insert(ApiKey, row);
      await audit(m, { actor, entity: 'api_key', entityId: row.id, action: 'create', after: { role: row.role, lane: row.lane }, at: now });
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
    const now = Date.now();
    const hit = this.cache.get(raw);
    if (hit && hit.until > now) return hit.principal;
    const row = await this.db.read((m) => m.findOne(ApiKey, { where: { keyHash: hashKey(raw) } }));
    const principal = row && row.revokedAt == null ? { id: row.id, role: row.role, lane: row.lane } : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(raw, { principal, until: now + CACHE_MS });
    return principal;
  }
}
