/**
 * Streams `sku,counted` lines out of an upload without ever holding the file as one string:
 * header optional, BOM and CRLF accepted, every problem reported with its line number.
 */
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { SKU_PATTERN } from '../http/validate';

export interface CountEntry {
  line: number;
  sku: string;
  counted: number;
}
export interface LineError {
  line: number;
  message: string;
}

const SKU = SKU_PATTERN;
export const MAX_COUNTED = 1_000_000;

export class UploadTooLarge extends Error {}

/** Checks one record; returns the entry or what is wrong with it. */
export function parseRecord(line: number, cols: string[]): CountEntry | LineError {
  if (cols.length !== 2) return { line, message: `expected 2 columns (sku,counted), found ${cols.length}` };
  const sku = unquote(cols[0]);
  const raw = unquote(cols[1]);
  if (!SKU.test(sku)) return { line, message: `"${sku.slice(0, 70)}" is not a SKU code` };
  if (!/^\d+$/.test(raw)) return { line, message: `count "${raw.slice(0, 30)}" must be a whole number of 0 or more` };
  const counted = Number(raw);
  if (counted > MAX_COUNTED) return { line, message: `count ${raw} is more than ${MAX_COUNTED}` };
  return { line, sku, counted };
}

const unquote = (s: string) => {
  const t = s.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replace(/""/g, '"') : t;
};

export async function readCountCsv(
  body: Readable,
  maxBytes: number,
): Promise<{ entries: CountEntry[]; errors: LineError[] }> {
  const decoder = new StringDecoder('utf8');
  const entries: CountEntry[] = [];
  const errors: LineError[] = [];
  let carry = '';
  let lineNo = 0;
  let bytes = 0;
  const take = (text: string) => {
    lineNo++;
    let line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (line.trim() === '') return;
    const cols = line.split(',');
    if (lineNo === 1 && /^\s*"?sku"?\s*$/i.test(cols[0] ?? '') && /^\s*"?counted"?\s*$/i.test(cols[1] ?? '')) return;
    const r = parseRecord(lineNo, cols);
    if ('message' in r) errors.push(r);
    else entries.push(r);
  };
  for await (const chunk of body) {
    bytes += (chunk as Buffer).length;
    if (bytes > maxBytes) throw new UploadTooLarge(`the upload is larger than ${maxBytes} bytes`);
    carry += decoder.write(chunk as Buffer);
    let nl: number;
    let from = 0;
    while ((nl = carry.indexOf('\n', from)) !== -1) {
      take(carry.slice(from, nl));
      from = nl + 1;
    }
    carry = carry.slice(from);
  }
  carry += decoder.end();
  if (carry.length) take(carry);
  return { entries, errors };
}
