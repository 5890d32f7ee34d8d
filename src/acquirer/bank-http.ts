/**
 * The simulated bank as kept by the acquirer simulator, reached over HTTP — how a terminal
 * simulator running as its own program (`pos sim-terminal --acquirer URL`) tells the acquirer
 * simulator what the card network did, so both answer alike for the same reference.
 */
import { BankTxn, SimBankPort } from './sim-bank';

export class HttpSimBank implements SimBankPort {
  constructor(private readonly baseUrl: string) {}

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${this.baseUrl.replace(/\/$/, '')}${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(5000),
    });
  }

  async record(txn: Parameters<SimBankPort['record']>[0]): Promise<void> {
    const r = await this.call('POST', '/sim/bank/record', txn);
    if (!r.ok) throw new Error(`sim bank record: HTTP ${r.status}`);
  }

  async reverse(orderId: string): Promise<'reversed' | 'not_found' | 'already_final'> {
    const r = await this.call('POST', '/sim/bank/reverse', { orderId });
    if (!r.ok) throw new Error(`sim bank reverse: HTTP ${r.status}`);
    return ((await r.json()) as { result: 'reversed' | 'not_found' | 'already_final' }).result;
  }

  async get(orderId: string): Promise<BankTxn | undefined> {
    const r = await this.call('GET', `/sim/bank/txns/${encodeURIComponent(orderId)}`);
    if (r.status === 404) return undefined;
    if (!r.ok) throw new Error(`sim bank get: HTTP ${r.status}`);
    return (await r.json()) as BankTxn;
  }
}
