import { randomBytes } from 'node:crypto';
import { v7 } from 'uuid';

/**
 * Row ids are UUIDv7: time-ordered, so InnoDB's clustered index grows at its end and a day's rows
 * sit on neighbouring pages (the T+1 file's look-ups by payment then hit cached pages instead of
 * one random page each: bench:recon on MariaDB). Still random enough (74 bits) not to be guessed.
 */
export const newId = (): string => v7();

/**
 * The ECR reference (RF) sent to the terminal and known to the acquirer as orderId:
 * 1–32 chars of [A-Za-z0-9_-], unique per payment attempt. Time-prefixed so references sort,
 * random-suffixed so two lanes never collide.
 */
export function newPaymentReference(now: Date): string {
  const t = now.getTime().toString(36).toUpperCase();
  return `P${t}${randomBytes(6).toString('hex').toUpperCase()}`;
}
