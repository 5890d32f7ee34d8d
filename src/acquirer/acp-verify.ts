/**
 * Verifies an acquirer response (spec §4): the certificate in `signPubKeyCert` must be inside its
 * validity dates, chain to the configured root through the configured intermediate, carry the
 * UnionPay CN (or the test CN in test mode), and its key must verify the signature. Anything else
 * and the response is treated as never received.
 */
import { KeyObject, X509Certificate } from 'node:crypto';
import { Clock, systemClock } from '../shared/clock';
import { AcpFields, verifyFieldsSignature } from './acp-signing';

export interface TrustAnchors {
  rootPem: string;
  middlePem: string;
  testMode: boolean;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

const UNIONPAY_CN = '中国银联股份有限公司';

/** What is learnt once per distinct signing certificate: its key, its dates, and that it chains and has the right CN. */
interface Dated {
  subject: string;
  validFrom: string;
  validTo: string;
  from: number;
  to: number;
}
interface CheckedCert extends Dated {
  publicKey: KeyObject;
}

const dated = (c: X509Certificate): Dated => ({
  subject: c.subject,
  validFrom: c.validFrom,
  validTo: c.validTo,
  from: Date.parse(c.validFrom),
  to: Date.parse(c.validTo),
});

/** Distinct signing certificates remembered (an acquirer rotates its certificate rarely; the bound keeps a flood out). */
const CACHE_MAX = 16;

export class ResponseVerifier {
  private readonly root: X509Certificate;
  private readonly middle: X509Certificate;
  private readonly anchorDates: Dated[];
  /** Keyed by the certificate's exact PEM text: another certificate with the same serial is checked afresh. */
  private readonly checked = new Map<string, CheckedCert>();

  constructor(
    private readonly anchors: TrustAnchors,
    private readonly clock: Clock = systemClock,
  ) {
    this.root = new X509Certificate(anchors.rootPem);
    this.middle = new X509Certificate(anchors.middlePem);
    this.anchorDates = [dated(this.middle), dated(this.root)];
  }

  /** Checks a signing certificate alone: dates, chain, CN. */
  checkCertificate(pem: string): Verdict {
    const r = this.certificate(pem);
    return r.ok ? { ok: true } : r;
  }

  /**
   * The parse, the chain and the CN are checked once per distinct certificate (only a certificate
   * that passes is remembered); the validity dates of it and of the anchors are checked against the
   * clock on every use.
   */
  private certificate(pem: string): { ok: true; cert: CheckedCert } | { ok: false; reason: string } {
    const known = this.checked.get(pem);
    if (known) {
      const d = this.outsideDates(known);
      return d ?? { ok: true, cert: known };
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      return { ok: false, reason: 'signPubKeyCert is not a certificate' };
    }
    const fresh: CheckedCert = { ...dated(cert), publicKey: cert.publicKey };
    const d = this.outsideDates(fresh);
    if (d) return d;
    if (!this.middle.checkIssued(this.root) || !this.middle.verify(this.root.publicKey))
      return { ok: false, reason: 'the intermediate is not issued by the root' };
    if (!cert.checkIssued(this.middle) || !cert.verify(this.middle.publicKey))
      return { ok: false, reason: 'the signing certificate does not chain to the configured root' };
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
    const third = cn.split('@')[2] ?? '';
    if (third !== UNIONPAY_CN && !(this.anchors.testMode && third === '00040000:SIGN'))
      return { ok: false, reason: `unexpected certificate CN ${cn}` };
    if (this.checked.size >= CACHE_MAX) this.checked.delete(this.checked.keys().next().value!);
    this.checked.set(pem, fresh);
    return { ok: true, cert: fresh };
  }

  private outsideDates(cert: Dated): { ok: false; reason: string } | null {
    const now = this.clock.now().getTime();
    for (const c of [cert, ...this.anchorDates]) {
      if (now < c.from || now > c.to) {
        return {
          ok: false,
          reason: `certificate ${c.subject.split('\n').pop()} is outside its validity (${c.validFrom} – ${c.validTo})`,
        };
      }
    }
    return null;
  }

  verify(fields: AcpFields): Verdict {
    if (!fields.signPubKeyCert) return { ok: false, reason: 'no signPubKeyCert' };
    if (!fields.signature) return { ok: false, reason: 'no signature' };
    const cert = this.certificate(fields.signPubKeyCert);
    if (!cert.ok) return cert;
    if (!verifyFieldsSignature(fields, cert.cert.publicKey)) return { ok: false, reason: 'signature does not verify' };
    return { ok: true };
  }
}
