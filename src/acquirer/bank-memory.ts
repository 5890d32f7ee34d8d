/**
 * The simulated card network's truth, in memory: what happened to each reference. The embedded
 * default shares one between the simulated terminals and the acquirer simulator.
 */
import { randomInt } from 'node:crypto';
import { BankTxn, SimBankPort } from './sim-bank';
import { mmdd, settleDayOfTxnTime } from '../reconciliation/settle-day';

export class MemorySimBank implements SimBankPort {
  private readonly txns = new Map<string, BankTxn>();
  private trace = randomInt(1, 900_000);

  async record(txn: Parameters<SimBankPort['record']>[0]): Promise<void> {
    this.trace = this.trace >= 999_999 ? 1 : this.trace + 1;
    this.txns.set(txn.orderId, {
      ...txn,
      queryId: txn.queryId ?? `${txn.txnTime}${randomInt(0, 10_000_000).toString().padStart(7, '0')}`,
      traceNo: txn.traceNo ?? this.trace.toString().padStart(6, '0'),
      // The 23:00 China-time cut-off: a trade at 23:30 settles the next day, as at a real acquirer.
      settleDate: txn.settleDate ?? mmdd(settleDayOfTxnTime(txn.txnTime)),
    });
  }

  async reverse(orderId: string): Promise<'reversed' | 'not_found' | 'already_final'> {
    const t = this.txns.get(orderId);
    if (!t) return 'not_found';
    if (t.status === 'voided') return 'already_final';
    if (t.status === 'approved' || t.status === 'declined') t.status = 'reversed';
    return 'reversed';
  }

  async get(orderId: string): Promise<BankTxn | undefined> {
    const t = this.txns.get(orderId);
    return t && { ...t };
  }

  /** Voids an approved transaction (V0 at the terminal). */
  async void(orderId: string): Promise<void> {
    const t = this.txns.get(orderId);
    if (t && t.status === 'approved') t.status = 'voided';
  }

  /** Every transaction the bank saw (the acquirer simulator's settlement file is made from them). */
  async list(): Promise<BankTxn[]> {
    return [...this.txns.values()].map((t) => ({ ...t }));
  }

  get size(): number {
    return this.txns.size;
  }
}
