/**
 * The acquirer gateway over HTTP (UnionPay ACP 5.1.0): status query and reversal, signed with the
 * merchant key, answers verified before they are believed. Anything that is not a verified answer
 * is `no_answer` — it says nothing about the transaction.
 */
import { Agent, request } from 'undici';
import { Logger, silentLogger } from '../shared/logger';
import { Acquirer, AcquirerQueryResult, AcquirerReversalResult, AcquirerTxnRef } from './acquirer';
import { AcpFields, formDecode, formEncode, signFieldsAsync, SigningKey } from './acp-signing';
import { ResponseVerifier } from './acp-verify';

export interface HttpAcquirerOptions {
  baseUrl: string;
  merId: string;
  key: SigningKey;
  verifier: ResponseVerifier;
  /** Connect + read time-out; the official SDK uses 30 s each. */
  timeoutMs?: number;
  log?: Logger;
}

const PROCESSING = new Set(['03', '04', '05']);

/** undici's own errors for a time-out (connect, headers, body), by code. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export class HttpAcquirer implements Acquirer {
  private readonly log: Logger;
  /**
   * undici's `request` on a keep-alive agent rather than `fetch`: under the sweeper (hundreds of
   * queries a second) fetch's WHATWG streams, abort signals and request objects were 14–21 % of the
   * sweeping process's CPU (bench:sweep, --cpu-prof). The time-out is the SDK's: connect, then read.
   */
  private readonly agent: Agent;

  constructor(readonly opts: HttpAcquirerOptions) {
    this.log = opts.log ?? silentLogger;
    const timeout = opts.timeoutMs ?? 30_000;
    this.agent = new Agent({ connect: { timeout }, headersTimeout: timeout, bodyTimeout: timeout });
  }

  /** Closes the kept-alive connections (shutdown). */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private base(ref: AcquirerTxnRef, txnType: string, txnSubType: string): AcpFields {
    return {
      version: '5.1.0',
      encoding: 'UTF-8',
      signMethod: '01',
      txnType,
      txnSubType,
      bizType: '000000',
      accessType: '0',
      channelType: '07',
      merId: this.opts.merId,
      orderId: ref.orderId,
      txnTime: ref.txnTime,
    };
  }

  /** Posts a signed request; returns the verified answer or why there is none. */
  private async call(
    path: string,
    fields: AcpFields,
  ): Promise<{ ok: true; fields: AcpFields } | { ok: false; reason: string }> {
    const body = formEncode(await signFieldsAsync(fields, this.opts.key));
    let text: string;
    try {
      const res = await request(`${this.opts.baseUrl.replace(/\/$/, '')}/gateway/api/${path}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
        dispatcher: this.agent,
      });
      text = await res.body.text();
      if (res.statusCode !== 200) return { ok: false, reason: `HTTP ${res.statusCode}` };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      return { ok: false, reason: `transport: ${TIMEOUT_CODES.has(code) ? 'timed out' : String(err)}` };
    }
    let answer: AcpFields;
    try {
      answer = formDecode(text);
    } catch {
      return { ok: false, reason: 'unparsable body' };
    }
    if (!answer.respCode) return { ok: false, reason: 'no respCode' };
    const v = this.opts.verifier.verify(answer);
    if (!v.ok) {
      this.log.warn('acquirer response ignored: it does not verify', { orderId: fields.orderId, reason: v.reason });
      return { ok: false, reason: `unverifiable response: ${v.reason}` };
    }
    if (answer.orderId && answer.orderId !== fields.orderId)
      return { ok: false, reason: 'answer is about another orderId' };
    return { ok: true, fields: answer };
  }

  async query(ref: AcquirerTxnRef): Promise<AcquirerQueryResult> {
    const r = await this.call('queryTrans.do', this.base(ref, '00', '00'));
    if (!r.ok) return { kind: 'no_answer', reason: r.reason };
    const a = r.fields;
    if (a.respCode === '34') return { kind: 'not_found', respCode: a.respCode };
    if (a.respCode === '37') return { kind: 'rate_limited', respCode: a.respCode };
    if (PROCESSING.has(a.respCode)) return { kind: 'processing', respCode: a.respCode };
    if (a.respCode !== '00')
      return {
        kind: 'no_answer',
        reason: `query failed (${a.respCode} ${a.respMsg ?? ''})`.trim(),
        respCode: a.respCode,
      };
    const orig = a.origRespCode ?? '';
    if (orig === '00') {
      return {
        kind: 'approved',
        respCode: a.respCode,
        origRespCode: orig,
        queryId: a.queryId,
        traceNo: a.traceNo,
        traceTime: a.traceTime,
        settleDate: a.settleDate,
        txnAmtFen: a.txnAmt && /^\d+$/.test(a.txnAmt) ? Number(a.txnAmt) : undefined,
      };
    }
    if (PROCESSING.has(orig) || orig === '')
      return { kind: 'processing', respCode: a.respCode, origRespCode: orig || undefined };
    return { kind: 'failed', respCode: a.respCode, origRespCode: orig, origRespMsg: a.origRespMsg };
  }

  async reverse(ref: AcquirerTxnRef & { amountFen: number }): Promise<AcquirerReversalResult> {
    const r = await this.call('backTransReq.do', this.base(ref, '99', '01'));
    if (!r.ok) return { kind: 'no_answer', reason: r.reason };
    const code = r.fields.respCode;
    if (code === '00') return { kind: 'reversed', respCode: code };
    if (PROCESSING.has(code)) return { kind: 'unknown', respCode: code };
    return { kind: 'refused', respCode: code, respMsg: r.fields.respMsg };
  }
}
