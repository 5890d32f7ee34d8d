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

/** audit_log's columns as the batched paths insert them (db/batch.multiRowInsert), in `auditRow`'s order. */
export const AUDIT_COLUMNS = ['actor', 'entity', 'entity_id', 'action', 'before', 'after', 'at'];

/** One audit fact as a row of AUDIT_COLUMNS, for a multi-row INSERT in a batch's writes. */
export function auditRow(f: AuditFact): unknown[] {
  return [f.actor, f.entity, f.entityId, f.action, json(f.before), json(f.after), f.at];
}

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
