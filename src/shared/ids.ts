import { randomBytes, randomUUID } from 'node:crypto';

export const newId = (): string => randomUUID();

/**
 * The ECR reference (RF) sent to the terminal and known to the acquirer as orderId:
 * 1–32 chars of [A-Za-z0-9_-], unique per payment attempt. Time-prefixed so references sort,
 * random-suffixed so two lanes never collide.
 */
export function newPaymentReference(now: Date): string {
  const t = now.getTime().toString(36).toUpperCase();
  return `P${t}${randomBytes(6).toString('hex').toUpperCase()}`;
}
