/**
 * The merchant's signing key from its PKCS#12 file. UnionPay's test file uses RC2-40, which Node's
 * crypto (OpenSSL 3) will not open; node-forge does.
 */
import { createPrivateKey, KeyObject, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { serialToDecimal, SigningKey } from './acp-signing';

export interface MerchantKey extends SigningKey {
  privateKey: KeyObject;
  certPem: string;
}

export function loadPfx(pfx: Buffer, password: string): MerchantKey {
  const asn1 = forge.asn1.fromDer(forge.util.createBuffer(pfx.toString('binary')));
  const p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  const keyBag = [
    ...(p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag })[forge.pki.oids.pkcs8ShroudedKeyBag] ?? []),
    ...(p12.getBags({ bagType: forge.pki.oids.keyBag })[forge.pki.oids.keyBag] ?? []),
  ].find((b) => b.key);
  const certBag = (p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag] ?? []).find((b) => b.cert);
  if (!keyBag?.key || !certBag?.cert) throw new Error('the PKCS#12 file holds no private key and certificate');
  const certPem = forge.pki.certificateToPem(certBag.cert);
  return {
    privateKey: createPrivateKey(forge.pki.privateKeyToPem(keyBag.key as forge.pki.rsa.PrivateKey)),
    certPem,
    certId: serialToDecimal(new X509Certificate(certPem).serialNumber),
  };
}

export function keyFromPem(privateKeyPem: string, certId: string): SigningKey {
  if (!/^\d+$/.test(certId)) throw new Error('ACQUIRER_SIGN_CERT_ID must be the certificate serial in decimal');
  return { privateKey: createPrivateKey(privateKeyPem), certId };
}
