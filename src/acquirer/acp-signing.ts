/**
 * UnionPay ACP signing (../shared/spec/acquirer-gateway.md §4): drop empty fields, sort by key,
 * join `k=v&…` with raw values, SHA-256 hex digest, RSA PKCS#1 v1.5 SHA-256 over the digest's
 * ASCII bytes, base64. Version 5.0.0 uses SHA-1 in both places; signMethod 11 a shared key.
 */
import { createHash, createSign, createVerify, KeyObject, sign } from 'node:crypto';

export type AcpFields = Record<string, string>;

export function stringToSign(fields: AcpFields): string {
  return Object.keys(fields)
    .filter((k) => k !== 'signature' && fields[k] !== '' && fields[k] !== undefined)
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
}

const algo = (version: string) => (version === '5.0.0' ? 'sha1' : 'sha256');

export interface SigningKey {
  privateKey: KeyObject | string;
  /** The signing certificate's serial number in decimal. */
  certId: string;
}

/** The fields as signed (empty ones and any old signature dropped, certId set) and the digest the RSA key signs. */
function signable(
  fields: AcpFields,
  key: SigningKey,
): { out: AcpFields; algorithm: 'sha1' | 'sha256'; digest: string } {
  const out: AcpFields = {};
  for (const [k, v] of Object.entries(fields)) if (v !== '' && v !== undefined && k !== 'signature') out[k] = v;
  out.certId = key.certId;
  const algorithm = algo(out.version ?? '5.1.0');
  const digest = createHash(algorithm).update(stringToSign(out), 'utf8').digest('hex');
  return { out, algorithm, digest };
}

/** Returns the fields with empty ones dropped and certId and signature set. */
export function signFields(fields: AcpFields, key: SigningKey): AcpFields {
  const { out, algorithm, digest } = signable(fields, key);
  out.signature = createSign(algorithm === 'sha1' ? 'RSA-SHA1' : 'RSA-SHA256')
    .update(digest, 'ascii')
    .sign(key.privateKey, 'base64');
  return out;
}

/**
 * signFields, with the RSA operation on libuv's thread pool (crypto.sign with a callback) instead of
 * the event loop: the sweeper signs every query and reversal inside the service process, and on the
 * event loop each signature (0.25–0.5 ms here) held up the lanes' requests. Same bytes as signFields.
 */
export async function signFieldsAsync(fields: AcpFields, key: SigningKey): Promise<AcpFields> {
  const { out, algorithm, digest } = signable(fields, key);
  const sig = await new Promise<Buffer>((resolve, reject) =>
    sign(algorithm, Buffer.from(digest, 'ascii'), key.privateKey, (err, s) => (err ? reject(err) : resolve(s))),
  );
  out.signature = sig.toString('base64');
  return out;
}

export function verifyFieldsSignature(fields: AcpFields, publicKey: KeyObject | string): boolean {
  if (!fields.signature) return false;
  const a = algo(fields.version ?? '5.1.0');
  const digest = createHash(a).update(stringToSign(fields), 'utf8').digest('hex');
  try {
    return createVerify(a === 'sha1' ? 'RSA-SHA1' : 'RSA-SHA256')
      .update(digest, 'ascii')
      .verify(publicKey, fields.signature, 'base64');
  } catch {
    return false;
  }
}

/** signMethod 11: sha256hex(sortedString + "&" + sha256hex(secureKey)); certId is not part of it. */
export function signWithSecureKey(fields: AcpFields, secureKey: string): string {
  const { certId: _certId, ...rest } = fields;
  const keyHash = createHash('sha256').update(secureKey, 'utf8').digest('hex');
  return createHash('sha256')
    .update(`${stringToSign(rest)}&${keyHash}`, 'utf8')
    .digest('hex');
}

/** A certificate serial (hex, as X509Certificate and node-forge give it) in decimal, exactly. */
export function serialToDecimal(hexSerial: string): string {
  return BigInt(`0x${hexSerial.replace(/[^0-9a-fA-F]/g, '')}`).toString(10);
}

export function formEncode(fields: AcpFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

export function formDecode(body: string): AcpFields {
  const out: AcpFields = {};
  for (const [k, v] of new URLSearchParams(body)) out[k] = v;
  return out;
}
