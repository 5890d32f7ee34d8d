import { EntityManager } from 'typeorm';
import { AuditEntry } from './audit.entity';

export interface AuditFact {
  actor: string;
  entity: string;
  entityId: string;
  action: string;
  before?: unknown;
  after?: unknown;
  at: number;
}

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

/** Appends audit rows inside the caller's transaction, so a change and its record commit together. */
export async function audit(m: EntityManager, ...facts: AuditFact[]): Promise<void> {
  if (facts.length === 0) return;
  await m.insert(
    AuditEntry,
    facts.map((f) => ({
      actor: f.actor,
      entity: f.entity,
      entityId: f.entityId,
      action: f.action,
      before: json(f.before),
      after: json(f.after),
      at: f.at,
    })),
  );
}
