/**
 * Reading and writing the acquirer's ZIP (ZM detail file + RD report), streamed: the detail file
 * is never held whole in memory, lines go to the caller in batches as they are read.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import yauzl, { Entry, ZipFile } from 'yauzl';
import yazl from 'yazl';
import { formatRd, parseRdTotals, Totals } from './rd-report';
import { isReversingType, parseZmLine, ZmLine, ZmLineError } from './zm-format';

export interface ZmRecord {
  lineNo: number;
  line: ZmLine;
}

export interface ZipReadResult {
  zmName: string | null;
  merId: string | null;
  lines: number;
  detail: Totals;
  rd: Totals | null;
  /** Why the file cannot be trusted (unreadable, bad lines, no RD …); empty when it can. */
  problems: string[];
}

const ZM_NAME = /^INN\d{6}\d\dZM_(\w+)$/;
const RD_NAME = /^RD\w*_(\w+)$/;
const baseName = (p: string) => p.split('/').pop() ?? p;

function openZip(path: string): Promise<ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, autoClose: true }, (err, zf) => (err ? reject(err) : resolve(zf))),
  );
}

function openEntry(zf: ZipFile, e: Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => zf.openReadStream(e, (err, s) => (err ? reject(err) : resolve(s))));
}

/** Every entry of the ZIP, one at a time (the next is read only after the caller is done with this one). */
async function* entries(zf: ZipFile): AsyncGenerator<Entry> {
  for (;;) {
    const next = await new Promise<Entry | null>((resolve, reject) => {
      const onEntry = (e: Entry) => {
        cleanup();
        resolve(e);
      };
      const onEnd = () => {
        cleanup();
        resolve(null);
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const cleanup = () => {
        zf.off('entry', onEntry);
        zf.off('end', onEnd);
        zf.off('error', onError);
      };
      zf.on('entry', onEntry);
      zf.on('end', onEnd);
      zf.on('error', onError);
      zf.readEntry();
    });
    if (!next) return;
    yield next;
  }
}

/** The totals the detail lines add up to, signed like the RD report's. */
export function addToTotals(t: Totals, l: ZmLine): void {
  t.count++;
  t.amountFen += isReversingType(l.txnType) ? -l.amountFen : l.amountFen;
  t.feeFen += l.feeFen;
  t.netFen += l.netFen;
}

/**
 * Reads the ZIP at `path`: the ZM lines go to `onBatch` `batchSize` at a time (awaited, so the
 * reading waits for the database), the RD totals are returned with the detail totals. Bad lines
 * are counted as problems and not passed on.
 */
export async function readReconZip(
  path: string,
  onBatch: (batch: ZmRecord[]) => Promise<void>,
  batchSize = 500,
): Promise<ZipReadResult> {
  const out: ZipReadResult = {
    zmName: null,
    merId: null,
    lines: 0,
    detail: { count: 0, amountFen: 0, feeFen: 0, netFen: 0 },
    rd: null,
    problems: [],
  };
  let badLines = 0;
  // A failure of the caller (the database) is not a fault of the file: it must not be reported as one.
  let callerError: unknown = null;
  const deliver = async (b: ZmRecord[]) => {
    try {
      await onBatch(b);
    } catch (err) {
      callerError = err;
      throw err;
    }
  };
  try {
    const zf = await openZip(path);
    for await (const e of entries(zf)) {
      const name = baseName(e.fileName);
      if (ZM_NAME.test(name) && !out.zmName) {
        out.zmName = name;
        out.merId = ZM_NAME.exec(name)![1];
        let rest = Buffer.alloc(0);
        let batch: ZmRecord[] = [];
        const take = async (raw: Buffer) => {
          const buf = raw.length && raw[raw.length - 1] === 0x0d ? raw.subarray(0, raw.length - 1) : raw;
          if (buf.length === 0) return;
          out.lines++;
          try {
            const line = parseZmLine(buf);
            addToTotals(out.detail, line);
            batch.push({ lineNo: out.lines, line });
          } catch (err) {
            if (!(err instanceof ZmLineError)) throw err;
            if (++badLines <= 5) out.problems.push(`line ${out.lines}: ${err.message}`);
          }
          if (batch.length >= batchSize) {
            const b = batch;
            batch = [];
            await deliver(b);
          }
        };
        for await (const chunk of await openEntry(zf, e)) {
          let data = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
          let nl: number;
          let start = 0;
          while ((nl = data.indexOf(0x0a, start)) >= 0) {
            await take(data.subarray(start, nl));
            start = nl + 1;
          }
          rest = Buffer.from(data.subarray(start));
          data = rest;
        }
        if (rest.length) await take(rest);
        if (batch.length) await deliver(batch);
      } else if (RD_NAME.test(name) && !out.rd) {
        const chunks: Buffer[] = [];
        for await (const c of await openEntry(zf, e)) chunks.push(c as Buffer);
        try {
          out.rd = parseRdTotals(Buffer.concat(chunks));
        } catch (err) {
          out.problems.push(`RD report ${name}: ${(err as Error).message}`);
        }
      }
    }
  } catch (err) {
    if (callerError) throw callerError;
    out.problems.push(`the ZIP cannot be read: ${(err as Error).message}`);
  }
  if (badLines > 5) out.problems.push(`… ${badLines} bad lines in all`);
  if (!out.zmName) out.problems.push('the ZIP holds no ZM detail file (INN…ZM_merId)');
  if (!out.rd && !out.problems.some((p) => p.startsWith('RD')))
    out.problems.push('the ZIP holds no RD report with control totals');
  return out;
}

export function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

export interface ZipWriteInput {
  merId: string;
  settleDay: string;
  /** The ZM lines, as an iterable so a large file is never built in memory. */
  lines: Iterable<Buffer> | AsyncIterable<Buffer>;
  /** The RD totals; computed from the lines when absent. */
  totals?: Totals | ((detail: Totals) => Totals);
}

/** The file names UnionPay uses: INN{YYMMDD}88ZM_{merId} and RD{…}{YYMMDD}01_{merId}. */
export function reconFileNames(merId: string, settleDay: string): { zm: string; rd: string } {
  const yymmdd = settleDay.replace(/-/g, '').slice(2);
  return { zm: `INN${yymmdd}88ZM_${merId}`, rd: `RD2010${yymmdd}01_${merId}` };
}

/** Writes the ZIP as a stream of bytes (yazl); lines joined by CRLF. */
export function writeReconZip(input: ZipWriteInput): NodeJS.ReadableStream {
  const zip = new yazl.ZipFile();
  const names = reconFileNames(input.merId, input.settleDay);
  const detail: Totals = { count: 0, amountFen: 0, feeFen: 0, netFen: 0 };
  const { PassThrough } = require('node:stream') as typeof import('node:stream');
  const zm = new PassThrough();
  zip.addReadStream(zm, names.zm, { mtime: new Date(`${input.settleDay}T12:00:00Z`) });
  void (async () => {
    for await (const b of input.lines as AsyncIterable<Buffer>) {
      addToTotals(detail, parseZmLine(b));
      if (!zm.write(Buffer.concat([b, Buffer.from('\r\n')]))) await new Promise((r) => zm.once('drain', r));
    }
    zm.end();
    const totals = typeof input.totals === 'function' ? input.totals(detail) : (input.totals ?? detail);
    zip.addBuffer(formatRd(totals, input.merId, input.settleDay), names.rd, {
      mtime: new Date(`${input.settleDay}T12:00:00Z`),
    });
    zip.end();
  })().catch((err) => zip.outputStream.emit('error', err));
  return zip.outputStream;
}

export async function streamToBuffer(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
