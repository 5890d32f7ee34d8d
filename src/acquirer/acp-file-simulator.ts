/**
 * The acquirer simulator's settlement file (`fileTransRequest.do`): a ZIP with the ZM detail
 * lines and the RD report for the trades its bank saw on the asked settle day (approved sales;
 * a voided sale and its void line), zlib-compressed and base64'd, signed like any answer.
 * Faults per settle day (POST /sim/file-faults {settleDate: "MMDD", fault, count?}): `98` (not yet
 * there), `truncated` (half a ZIP), `totals` (the RD report disagrees with the lines), `badsig`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { X509Certificate } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { AcpFields, formEncode, serialToDecimal, signFields } from './acp-signing';
import type { AcquirerSimulator } from './acp-simulator';
import { BankTxn } from './sim-bank';
import { dayFromMmdd, settleDayAt } from '../reconciliation/settle-day';
import { formatZmLine } from '../reconciliation/zm-format';
import { streamToBuffer, writeReconZip } from '../reconciliation/recon-zip';

export const FILE_FAULTS = ['98', 'truncated', 'totals', 'badsig'] as const;
export type FileFault = (typeof FILE_FAULTS)[number];

interface FileState {
  faults: Map<string, { fault: FileFault; remaining: number }>;
  requests: string[];
}
const state = new WeakMap<AcquirerSimulator, FileState>();
const stateOf = (sim: AcquirerSimulator): FileState => {
  let s = state.get(sim);
  if (!s) state.set(sim, (s = { faults: new Map(), requests: [] }));
  return s;
};

/** `count` answers for the settle day (MMDD) carry the fault (default: until cleared). */
export function setFileFault(sim: AcquirerSimulator, settleDateMmdd: string, fault: FileFault, count = Infinity): void {
  stateOf(sim).faults.set(settleDateMmdd, { fault, remaining: count });
}

export function clearFileFaults(sim: AcquirerSimulator): void {
  stateOf(sim).faults.clear();
}

/** The settle dates (MMDD) asked for, in order. */
export const fileRequests = (sim: AcquirerSimulator): readonly string[] => stateOf(sim).requests;

/** 0.6 % merchant fee, rounded to the fen, like a typical debit-card rate. */
const feeOf = (amountFen: number) => Math.round(amountFen * 0.006);

export function zmLinesFor(txns: BankTxn[], merId: string): Buffer[] {
  const out: Buffer[] = [];
  for (const t of txns.sort((a, b) => a.txnTime.localeCompare(b.txnTime))) {
    if (t.status !== 'approved' && t.status !== 'voided') continue;
    const fee = feeOf(t.amountFen);
    const common = { traceNo: t.traceNo, txnTime: t.txnTime.slice(4), rf: t.orderId, merId };
    out.push(
      formatZmLine({
        ...common,
        amountFen: t.amountFen,
        queryId: t.queryId,
        feeFen: fee,
        txnType: '01',
        txnSubType: '01',
      }),
    );
    if (t.status === 'voided') {
      out.push(
        formatZmLine({
          ...common,
          amountFen: t.amountFen,
          queryId: `${t.queryId.slice(0, 20)}V`,
          origQueryId: t.queryId,
          feeFen: -fee,
          settleFen: -(t.amountFen - fee),
          netFen: -(t.amountFen - fee),
          txnType: '31',
          txnSubType: '00',
        }),
      );
    }
  }
  return out;
}

/** Handles the file routes; false when the request is not one of them. */
export async function handleFileRoutes(
  sim: AcquirerSimulator,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  body: string,
  decode: (b: string) => AcpFields,
  merchantSignatureOk: (f: AcpFields) => boolean,
  now: () => Date,
): Promise<boolean> {
  const json = (status: number, b: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(b));
  };
  if (url.pathname === '/sim/file-faults') {
    if (req.method === 'DELETE') {
      clearFileFaults(sim);
      json(200, { ok: true });
      return true;
    }
    const f = JSON.parse(body || '{}') as { settleDate?: string; fault?: FileFault; count?: number };
    if (
      req.method !== 'POST' ||
      !f.settleDate ||
      !/^\d{4}$/.test(f.settleDate) ||
      !f.fault ||
      !FILE_FAULTS.includes(f.fault)
    ) {
      json(400, { error: `POST {settleDate: "MMDD", fault: one of ${FILE_FAULTS.join(', ')}, count?}` });
      return true;
    }
    setFileFault(sim, f.settleDate, f.fault, f.count ?? Infinity);
    json(200, { ok: true });
    return true;
  }
  if (!(req.method === 'POST' && url.pathname === '/gateway/api/fileTransRequest.do')) return false;
  const q = decode(body);
  const md = q.settleDate ?? '';
  stateOf(sim).requests.push(md);
  const echo: AcpFields = {
    version: '5.1.0',
    encoding: 'UTF-8',
    signMethod: '01',
    txnType: q.txnType ?? '',
    txnSubType: q.txnSubType ?? '',
    bizType: q.bizType ?? '',
    accessType: q.accessType ?? '',
    merId: q.merId ?? '',
    settleDate: md,
    txnTime: q.txnTime ?? '',
    fileType: q.fileType ?? '',
  };
  if (!merchantSignatureOk(q)) {
    answer(sim, res, { ...echo, respCode: '11', respMsg: '验证签名失败' }, false);
    return true;
  }
  if (!/^\d{4}$/.test(md) || q.txnType !== '76') {
    answer(sim, res, { ...echo, respCode: '10', respMsg: '报文格式错误' }, false);
    return true;
  }
  const f = stateOf(sim).faults.get(md);
  const fault = f ? f.fault : null;
  if (f && --f.remaining <= 0) stateOf(sim).faults.delete(md);
  if (fault === '98') {
    answer(sim, res, { ...echo, respCode: '98', respMsg: '文件不存在' }, false);
    return true;
  }

  const today = settleDayAt(now());
  const day = dayFromMmdd(md, today);
  // A settle day's file exists only once the day is over (after its 23:00 cut-off, China time).
  if (day >= today) {
    answer(sim, res, { ...echo, respCode: '98', respMsg: '文件不存在' }, false);
    return true;
  }
  const txns = (await sim.bank.list?.()) ?? [];
  const lines = zmLinesFor(
    txns.filter((t) => t.settleDate === md),
    q.merId ?? '',
  );
  let zip = await streamToBuffer(
    writeReconZip({
      merId: q.merId ?? '',
      settleDay: day,
      lines,
      totals: fault === 'totals' ? (d) => ({ ...d, count: d.count + 1, amountFen: d.amountFen + 10_000 }) : undefined,
    }),
  );
  if (fault === 'truncated') zip = zip.subarray(0, Math.floor(zip.length / 2));
  answer(
    sim,
    res,
    {
      ...echo,
      respCode: '00',
      respMsg: '成功[0000000]',
      fileName: `${q.merId}_${day.replace(/-/g, '')}.zip`,
      fileContent: deflateSync(zip).toString('base64'),
    },
    fault === 'badsig',
  );
  return true;
}

function answer(sim: AcquirerSimulator, res: ServerResponse, fields: AcpFields, tamper: boolean): void {
  const certId = serialToDecimal(new X509Certificate(sim.chain.signCertPem).serialNumber);
  const signed = signFields(
    { ...fields, signPubKeyCert: sim.chain.signCertPem },
    { privateKey: sim.chain.signKey, certId },
  );
  if (tamper) signed.respMsg = `${signed.respMsg ?? ''} (tampered)`;
  res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' });
  res.end(formEncode(signed));
}
