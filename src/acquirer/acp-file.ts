/**
 * Downloading the acquirer's reconciliation file (ACP `fileTransRequest.do`,
 * ../shared/spec/reconciliation-file.md): signed like a query, the answer verified before it is
 * believed. `00` carries the ZIP as base64 of a zlib stream; `98` means the file is not there yet.
 * Anything else that is not a verified answer says nothing, and the run waits to try again.
 */
import { inflateSync } from 'node:zlib';
import { chinaTimestamp, Clock, systemClock } from '../shared/clock';
import { AcpFields, formDecode, formEncode, signFields } from './acp-signing';
import { HttpAcquirerOptions } from './acp-client';

export type FileDownload =
  | { kind: 'file'; zip: Buffer; fileName?: string }
  | { kind: 'not_yet'; respCode: string; respMsg?: string }
  | { kind: 'no_answer'; reason: string };

export interface ReconFileSource {
  readonly merId: string;
  download(settleDateMmdd: string): Promise<FileDownload>;
}

/** A 1 000 000-line file is a few tens of MB compressed; a longer answer is refused rather than buffered. */
const MAX_ANSWER_BYTES = 512 * 1024 * 1024;

export class AcpFileClient implements ReconFileSource {
  constructor(
    private readonly opts: HttpAcquirerOptions,
    private readonly clock: Clock = systemClock,
  ) {}

  get merId(): string {
    return this.opts.merId;
  }

  async download(settleDateMmdd: string): Promise<FileDownload> {
    const req: AcpFields = {
      version: '5.1.0',
      encoding: 'UTF-8',
      signMethod: '01',
      txnType: '76',
      txnSubType: '01',
      bizType: '000000',
      accessType: '0',
      fileType: '00',
      merId: this.opts.merId,
      settleDate: settleDateMmdd,
      txnTime: chinaTimestamp(this.clock.now()),
    };
    let text: string;
    try {
      const res = await fetch(`${this.opts.baseUrl.replace(/\/$/, '')}/gateway/api/fileTransRequest.do`, {
        method: 'POST',
        body: formEncode(signFields(req, this.opts.key)),
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
        // A file is bigger than a query answer: four times the query time-out, at least a minute.
        signal: AbortSignal.timeout(Math.max(60_000, (this.opts.timeoutMs ?? 30_000) * 4)),
      });
      if (Number(res.headers.get('content-length') ?? 0) > MAX_ANSWER_BYTES)
        return { kind: 'no_answer', reason: 'answer too large' };
      text = await res.text();
      if (res.status !== 200) return { kind: 'no_answer', reason: `HTTP ${res.status}` };
    } catch (err) {
      return {
        kind: 'no_answer',
        reason: `transport: ${(err as Error).name === 'TimeoutError' ? 'timed out' : String(err)}`,
      };
    }
    let a: AcpFields;
    try {
      a = formDecode(text);
    } catch {
      return { kind: 'no_answer', reason: 'unparsable body' };
    }
    if (!a.respCode) return { kind: 'no_answer', reason: 'no respCode' };
    const v = this.opts.verifier.verify(a);
    if (!v.ok) {
      this.opts.log?.warn('acquirer file answer ignored: it does not verify', {
        settleDate: settleDateMmdd,
        reason: v.reason,
      });
      return { kind: 'no_answer', reason: `unverifiable response: ${v.reason}` };
    }
    if (a.respCode === '98') return { kind: 'not_yet', respCode: a.respCode, respMsg: a.respMsg };
    if (a.respCode !== '00')
      return { kind: 'no_answer', reason: `file request failed (${a.respCode} ${a.respMsg ?? ''})`.trim() };
    if (!a.fileContent) return { kind: 'no_answer', reason: 'respCode 00 without fileContent' };
    try {
      return { kind: 'file', zip: inflateSync(Buffer.from(a.fileContent, 'base64')), fileName: a.fileName };
    } catch (err) {
      // The answer verified, so the acquirer really sent this: a broken file, to be refused, not retried forever.
      return {
        kind: 'file',
        zip: Buffer.from(a.fileContent, 'base64').subarray(0, 0),
        fileName: `${a.fileName ?? 'file'} (does not inflate: ${(err as Error).message})`,
      };
    }
  }
}
