/**
 * Verifies an acquirer response (spec §4): the certificate in `signPubKeyCert` must be inside its
 * validity dates, chain to the configured root through the configured intermediate, carry the
 * UnionPay CN (or the test CN in test mode), and its key must verify the signature. Anything else
 * and the response is treated as never received.
 */
import { X509Certificate } from 'node:crypto';
import { Clock, systemClock } from '../shared/clock';
import { AcpFields, verifyFieldsSignature } from './acp-signing';

export interface TrustAnchors {
  rootPem: string;
  middlePem: string;
  testMode: boolean;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

const UNIONPAY_CN = '中国银联股份有限公司';

export class ResponseVerifier {
  private readonly root: X509Certificate;
  private readonly middle: X509Certificate;

  constructor(
    private readonly anchors: TrustAnchors,
    private readonly clock: Clock = systemClock,
  ) {
    this.root = new X509Certificate(anchors.rootPem);
    this.middle = new X509Certificate(anchors.middlePem);
  }

  /** Checks a signing certificate alone: dates, chain, CN. */
  checkCertificate(pem: string): Verdict {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      return { ok: false, reason: 'signPubKeyCert is not a certificate' };
    }
    const now = this.clock.now().getTime();
    for (const c of [cert, this.middle, this.root]) {
      if (now < Date.parse(c.validFrom) || now > Date.parse(c.validTo)) {
        return {
          ok: false,
          reason: `certificate ${c.subject.split('\n').pop()} is outside its validity (${c.validFrom} – ${c.validTo})`,
        };
      }
    }
    if (!this.middle.checkIssued(this.root) || !this.middle.verify(this.root.publicKey))
      return { ok: false, reason: 'the intermediate is not issued by the root' };
    if (!cert.checkIssued(this.middle) || !cert.verify(this.middle.publicKey))
      return { ok: false, reason: 'the signing certificate does not chain to the configured root' };
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
    const third = cn.split('@')[2] ?? '';
    if (third !== UNIONPAY_CN && !(this.anchors.testMode && third === '00040000:SIGN'))
      return { ok: false, reason: `unexpected certificate CN ${cn}` };
    return { ok: true };
  }

  verify(fields: AcpFields): Verdict {
    if (!fields.signPubKeyCert) return { ok: false, reason: 'no signPubKeyCert' };
    if (!fields.signature) return { ok: false, reason: 'no signature' };
    const cert = this.checkCertificate(fields.signPubKeyCert);
    if (!cert.ok) return cert;
    if (!verifyFieldsSignature(fields, new X509Certificate(fields.signPubKeyCert).publicKey))
      return { ok: false, reason: 'signature does not verify' };
    return { ok: true };
  }
}
