/**
 * UnionPay's gateway, simulated as a real HTTP server: `queryTrans.do` and `backTransReq.do` in
 * the ACP wire format, answered from a simulated bank and signed with a test chain made at start.
 * Faults can be set per orderId (POST /sim/faults) to test everything that can go wrong between a
 * store and its acquirer. The simulated terminals report what "the bank" did through /sim/bank/*.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { KeyObject, X509Certificate } from 'node:crypto';
import { chinaTimestamp } from '../shared/clock';
import { SimBankPort } from './sim-bank';
import { MemorySimBank } from './bank-memory';
import {
  AcpFields,
  formDecode,
  formEncode,
  serialToDecimal,
  signFieldsAsync,
  verifyFieldsSignature,
} from './acp-signing';
import { generateTestChain, TestChain } from './test-chain';
import { handleFileRoutes } from './acp-file-simulator';

export const ACQUIRER_FAULTS = ['34', '03', '04', '05', '37', '500', 'timeout', 'badsig', 'foreign'] as const;
export type AcquirerFault = (typeof ACQUIRER_FAULTS)[number];
/** Which calls for the orderId the fault hits. */
export type FaultTarget = 'query' | 'reverse' | 'both';

export interface AcquirerSimulatorOptions {
  bank?: SimBankPort;
  chain?: TestChain;
  /** When set, requests must be signed by this certificate's key. */
  merchantCertPem?: string;
  now?: () => Date;
  /** Added to every gateway answer, like a real acquirer's round trip. */
  latencyMs?: number;
}

const MAX_BODY = 64 * 1024;

export class AcquirerSimulator {
  readonly bank: SimBankPort;
  readonly chain: TestChain;
  private foreign: TestChain | null = null;
  private readonly faults = new Map<string, { fault: AcquirerFault; remaining: number; on: FaultTarget }>();
  /** The merchant's public key (parsed once), when requests must be signed. */
  private readonly merchantKey: KeyObject | null;
  /** Each chain's signing certificate serial in decimal, worked out once (it signs every answer). */
  private readonly certIds = new WeakMap<TestChain, string>();
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  readonly counts = { queries: 0, reversals: 0 };
  /** Every orderId a reversal was asked for, in order (tests check what was sent). */
  readonly reversedOrderIds: string[] = [];
  url = '';

  constructor(private readonly opts: AcquirerSimulatorOptions = {}) {
    this.bank = opts.bank ?? new MemorySimBank();
    this.chain = opts.chain ?? generateTestChain();
    this.merchantKey = opts.merchantCertPem ? new X509Certificate(opts.merchantCertPem).publicKey : null;
  }

  /** `count` answers with the fault (default: until cleared), to queries unless `on` says otherwise. */
  setFault(orderId: string, fault: AcquirerFault, count = Infinity, on: FaultTarget = 'query'): void {
    if (fault === 'foreign') this.foreign ??= generateTestChain('Foreign');
    this.faults.set(orderId, { fault, remaining: count, on });
  }

  clearFaults(): void {
    this.faults.clear();
  }

  private takeFault(orderId: string, call: 'query' | 'reverse'): AcquirerFault | null {
    const f = this.faults.get(orderId);
    if (!f || (f.on !== 'both' && f.on !== call)) return null;
    if (--f.remaining <= 0) this.faults.delete(orderId);
    return f.fault;
  }

  async start(host = '127.0.0.1', port = 0): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(port, host, r));
    this.url = `http://${host}:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise((r) => this.server!.close(() => r(undefined)));
    this.server = null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      const url = new URL(req.url ?? '/', 'http://sim');
      const body = await readBody(req);
      if (req.method === 'POST' && url.pathname === '/gateway/api/queryTrans.do')
        return await this.gateway(res, formDecode(body), 'query');
      if (req.method === 'POST' && url.pathname === '/gateway/api/backTransReq.do')
        return await this.gateway(res, formDecode(body), 'reverse');
      if (req.method === 'POST' && url.pathname === '/sim/bank/record') {
        await this.bank.record(JSON.parse(body));
        return json(200, { ok: true });
      }
      if (req.method === 'POST' && url.pathname === '/sim/bank/reverse')
        return json(200, { result: await this.bank.reverse(JSON.parse(body).orderId) });
      const txn = /^\/sim\/bank\/txns\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'GET' && txn) {
        const t = await this.bank.get(decodeURIComponent(txn[1]));
        return t ? json(200, t) : json(404, { error: 'no such transaction' });
      }
      if (req.method === 'POST' && url.pathname === '/sim/faults') {
        const f = JSON.parse(body) as { orderId?: string; fault?: AcquirerFault; count?: number; on?: FaultTarget };
        if (!f.orderId || !f.fault || !ACQUIRER_FAULTS.includes(f.fault))
          return json(400, { error: `need orderId and fault (one of ${ACQUIRER_FAULTS.join(', ')})` });
        if (f.on !== undefined && !['query', 'reverse', 'both'].includes(f.on))
          return json(400, { error: 'on must be query, reverse or both' });
        this.setFault(f.orderId, f.fault, f.count ?? Infinity, f.on ?? 'query');
        return json(200, { ok: true });
      }
      if (req.method === 'DELETE' && url.pathname === '/sim/faults') {
        this.clearFaults();
        return json(200, { ok: true });
      }
      if (req.method === 'GET' && url.pathname === '/sim/config')
        return json(200, { rootPem: this.chain.rootPem, middlePem: this.chain.middlePem });
      if (req.method === 'GET' && url.pathname === '/healthz') return json(200, { ok: true });
      // The settlement file (fileTransRequest.do) and its faults live in acp-file-simulator.ts.
      if (
        await handleFileRoutes(
          this,
          req,
          res,
          url,
          body,
          formDecode,
          (f) => !this.merchantKey || verifyFieldsSignature(f, this.merchantKey),
          () => this.opts.now?.() ?? new Date(),
        )
      )
        return;
      return json(404, { error: 'not found' });
    } catch (err) {
      return json(400, { error: String(err) });
    }
  }

  private async gateway(res: ServerResponse, req: AcpFields, kind: 'query' | 'reverse'): Promise<void> {
    if (this.opts.latencyMs) await new Promise((r) => setTimeout(r, this.opts.latencyMs));
    if (kind === 'query') this.counts.queries++;
    else {
      this.counts.reversals++;
      this.reversedOrderIds.push(req.orderId ?? '');
    }
    const orderId = req.orderId ?? '';
    const echo: AcpFields = {
      version: '5.1.0',
      encoding: 'UTF-8',
      signMethod: '01',
      txnType: req.txnType ?? '',
      txnSubType: req.txnSubType ?? '',
      bizType: req.bizType ?? '',
      accessType: req.accessType ?? '',
      merId: req.merId ?? '',
      orderId,
      txnTime: req.txnTime ?? '',
    };
    if (this.merchantKey && !verifyFieldsSignature(req, this.merchantKey)) {
      return this.answer(res, { ...echo, respCode: '11', respMsg: '验证签名失败' }, null);
    }
    const fault = this.takeFault(orderId, kind);
    if (fault === '500') {
      res.writeHead(500);
      res.end('internal error');
      return;
    }
    if (fault === 'timeout') return; // never answers; the socket is destroyed at close
    if (fault && /^\d\d$/.test(fault))
      return this.answer(
        res,
        {
          ...echo,
          respCode: fault,
          respMsg: fault === '34' ? '查无此交易' : fault === '37' ? '交易查询过于频繁' : '交易处理中',
        },
        null,
      );

    const txn = await this.bank.get(orderId);
    if (kind === 'reverse') {
      const result = await this.bank.reverse(orderId);
      // A reversal of a transaction the bank never saw is not a success: "reversed" would let a store
      // release goods for money a real acquirer may still hold. 34, like a query of it.
      if (result === 'not_found') return this.answer(res, { ...echo, respCode: '34', respMsg: '查无此交易' }, fault);
      const ok = result === 'reversed';
      return this.answer(
        res,
        { ...echo, respCode: ok ? '00' : '12', respMsg: ok ? '成功[0000000]' : '原交易状态不允许冲正' },
        fault,
      );
    }
    if (!txn) return this.answer(res, { ...echo, respCode: '34', respMsg: '查无此交易' }, fault);
    const orig =
      txn.status === 'approved'
        ? '00'
        : txn.status === 'declined'
          ? txn.respCode && txn.respCode !== '00'
            ? txn.respCode
            : '01'
          : '01';
    const origMsg = { approved: '成功[0000000]', declined: '交易失败', reversed: '交易已冲正', voided: '交易已撤销' }[
      txn.status
    ];
    return this.answer(
      res,
      {
        ...echo,
        respCode: '00',
        respMsg: '成功[0000000]',
        origRespCode: orig,
        origRespMsg: origMsg,
        queryId: txn.queryId,
        traceNo: txn.traceNo,
        traceTime: txn.txnTime.slice(4),
        txnAmt: String(txn.amountFen),
        settleAmt: String(txn.amountFen),
        settleCurrencyCode: '156',
        settleDate: txn.settleDate,
      },
      fault,
    );
  }

  /** Signs and sends; `badsig` tampers with a field after signing, `foreign` signs with a chain nobody trusts. */
  private async answer(res: ServerResponse, fields: AcpFields, fault: AcquirerFault | null): Promise<void> {
    let chain = this.chain;
    if (fault === 'foreign') chain = this.foreign ??= generateTestChain('Foreign');
    let certId = this.certIds.get(chain);
    if (certId === undefined) {
      certId = serialToDecimal(new X509Certificate(chain.signCertPem).serialNumber);
      this.certIds.set(chain, certId);
    }
    // On the thread pool, so the simulator answers from both cores (other tills may point at it).
    const signed = await signFieldsAsync(
      { ...fields, signPubKeyCert: chain.signCertPem },
      { privateKey: chain.signKey, certId },
    );
    if (fault === 'badsig') signed.respMsg = `${signed.respMsg ?? ''} (tampered)`;
    res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' });
    res.end(formEncode(signed));
  }

  /** Time stamp the simulator would give a transaction now (for tests and tools). */
  nowStamp(): string {
    return chinaTimestamp(this.opts.now?.() ?? new Date());
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
