/**
 * A certificate chain for the acquirer simulator, made at start: root → intermediate → a response
 * signing certificate whose CN has UnionPay's test form (…@00040000:SIGN@…). Keys come from
 * Node's crypto (fast); node-forge builds and signs the certificates.
 */
import { generateKeyPairSync, KeyObject, createPrivateKey } from 'node:crypto';
import forge from 'node-forge';

export interface TestChain {
  rootPem: string;
  middlePem: string;
  signCertPem: string;
  signKey: KeyObject;
}

function keyPair(): { pub: forge.pki.PublicKey; priv: forge.pki.rsa.PrivateKey; privPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    pub: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    priv: forge.pki.privateKeyFromPem(privPem),
    privPem,
  };
}

function cert(
  subjectCn: string,
  serial: string,
  pub: forge.pki.PublicKey,
  issuer: { cn: string; priv: forge.pki.rsa.PrivateKey },
  ca: boolean,
  notBefore: Date,
  notAfter: Date,
): forge.pki.Certificate {
  const c = forge.pki.createCertificate();
  c.publicKey = pub;
  c.serialNumber = serial;
  c.validity.notBefore = notBefore;
  c.validity.notAfter = notAfter;
  c.setSubject([
    { name: 'countryName', value: 'CN' },
    { name: 'organizationName', value: 'POS Simulated Acquirer' },
    { name: 'commonName', value: subjectCn },
  ]);
  c.setIssuer([
    { name: 'countryName', value: 'CN' },
    { name: 'organizationName', value: 'POS Simulated Acquirer' },
    { name: 'commonName', value: issuer.cn },
  ]);
  c.setExtensions(
    ca
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, nonRepudiation: true },
        ],
  );
  c.sign(issuer.priv, forge.md.sha256.create());
  return c;
}

export function generateTestChain(label = 'POS Sim', opts: { notBefore?: Date; notAfter?: Date } = {}): TestChain {
  const notBefore = opts.notBefore ?? new Date(Date.now() - 86400_000);
  const notAfter = opts.notAfter ?? new Date(Date.now() + 5 * 365 * 86400_000);
  const root = keyPair();
  const middle = keyPair();
  const sign = keyPair();
  const rootCn = `${label} TEST ROOT CA`;
  const middleCn = `${label} TEST OCA1`;
  const rootCert = cert(rootCn, '01', root.pub, { cn: rootCn, priv: root.priv }, true, notBefore, notAfter);
  const middleCert = cert(middleCn, '02', middle.pub, { cn: rootCn, priv: root.priv }, true, notBefore, notAfter);
  const signCert = cert(
    '041@Z2026-11-25@00040000:SIGN@00000001',
    '0100bc6a8f31',
    sign.pub,
    { cn: middleCn, priv: middle.priv },
    false,
    notBefore,
    notAfter,
  );
  return {
    rootPem: forge.pki.certificateToPem(rootCert),
    middlePem: forge.pki.certificateToPem(middleCert),
    signCertPem: forge.pki.certificateToPem(signCert),
    signKey: createPrivateKey(sign.privPem),
  };
}

/** A merchant signing key and its certificate, for a simulator set-up that has no real merchant key. */
export function generateMerchantKey(): { privateKey: KeyObject; certPem: string; certId: string } {
  const k = keyPair();
  const now = Date.now();
  const c = cert(
    'POS Simulated Merchant@SIGN',
    '3c5a9e21b7',
    k.pub,
    { cn: 'POS Simulated Merchant@SIGN', priv: k.priv },
    false,
    new Date(now - 86400_000),
    new Date(now + 5 * 365 * 86400_000),
  );
  return {
    privateKey: createPrivateKey(k.privPem),
    certPem: forge.pki.certificateToPem(c),
    certId: BigInt('0x3c5a9e21b7').toString(10),
  };
}
