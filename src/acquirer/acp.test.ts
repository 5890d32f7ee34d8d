import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ManualClock } from '../shared/clock';
import { fixturesDir } from '../../test/support/fixtures';
import { loadPfx } from './acp-keys';
import { signFields, signFieldsAsync, signWithSecureKey, stringToSign, verifyFieldsSignature } from './acp-signing';
import { ResponseVerifier } from './acp-verify';
import { HttpAcquirer } from './acp-client';
import { AcquirerSimulator } from './acp-simulator';
import { MemorySimBank } from './bank-memory';
import { generateMerchantKey, generateTestChain } from './test-chain';

const dir = resolve(fixturesDir(), 'unionpay');
const fixture = (f: string) => readFileSync(resolve(dir, f));
const vectors = JSON.parse(fixture('vectors.json').toString('utf8'));
const merchant = loadPfx(fixture('acp_test_sign.pfx'), '000000');

describe('ACP signing against the published vectors', () => {
  it('reads the PKCS#12 key and gives the certId in decimal', () => {
    expect(merchant.certId).toBe(vectors.sign_cert_id);
  });

  const rsaVectors: [string, any][] = vectors.vectors
    .filter((v: any) => v.fields.signMethod === '01')
    .map((v: any) => [v.name, v]);
  it.each(rsaVectors)('%s', (_n, v) => {
    const signed = signFields(v.fields, merchant);
    expect(stringToSign(signed)).toBe(v.string_to_sign);
    expect(signed.signature).toBe(v.signature);
    expect(verifyFieldsSignature(signed, merchant.certPem)).toBe(true);
    expect(verifyFieldsSignature({ ...signed, merId: '888888888888889' }, merchant.certPem)).toBe(false);
  });
  it.each(rsaVectors)('%s, signed on the thread pool: the same bytes', async (_n, v) => {
    expect(await signFieldsAsync(v.fields, merchant)).toEqual(signFields(v.fields, merchant));
  });

  it('signMethod 11 with a secure key', () => {
    const v = vectors.vectors.find((x: any) => x.fields.signMethod === '11');
    expect(signWithSecureKey(v.fields, '')).toBe(v.signature);
  });

  it('drops empty fields before signing', () => {
    expect(stringToSign({ b: '2', a: '', c: '3', signature: 'x' })).toBe('b=2&c=3');
  });
});

describe('response certificate checks', () => {
  const anchors = {
    rootPem: fixture('acp_test_root.cer').toString(),
    middlePem: fixture('acp_test_middle.cer').toString(),
    testMode: true,
  };
  const verifyCert = fixture('verify_test.cer').toString();

  it('verify_test.cer verifies against the fixture root and middle inside its validity', () => {
    expect(
      new ResponseVerifier(anchors, new ManualClock(new Date('2019-06-01T00:00:00Z'))).checkCertificate(verifyCert),
    ).toEqual({ ok: true });
  });

  it('fails outside its validity', () => {
    const v = new ResponseVerifier(anchors, new ManualClock(new Date('2021-06-01T00:00:00Z'))).checkCertificate(
      verifyCert,
    );
    expect(v).toMatchObject({ ok: false, reason: expect.stringMatching(/validity/) });
    expect(
      new ResponseVerifier(anchors, new ManualClock(new Date('2017-10-01T00:00:00Z'))).checkCertificate(verifyCert).ok,
    ).toBe(false);
  });

  it('refuses the test CN outside test mode', () => {
    const v = new ResponseVerifier(
      { ...anchors, testMode: false },
      new ManualClock(new Date('2019-06-01T00:00:00Z')),
    ).checkCertificate(verifyCert);
    expect(v).toMatchObject({ ok: false, reason: expect.stringMatching(/CN/) });
  });

  it("refuses a response signed with a key that is not the certificate's", () => {
    const chain = generateTestChain('Mine');
    const other = generateTestChain('Other');
    const v = new ResponseVerifier({ rootPem: chain.rootPem, middlePem: chain.middlePem, testMode: true });
    const good = signFields(
      { respCode: '00', orderId: 'X', signPubKeyCert: chain.signCertPem },
      { privateKey: chain.signKey, certId: '1' },
    );
    expect(v.verify(good)).toEqual({ ok: true });
    const wrongKey = signFields(
      { respCode: '00', orderId: 'X', signPubKeyCert: chain.signCertPem },
      { privateKey: other.signKey, certId: '1' },
    );
    expect(v.verify(wrongKey)).toMatchObject({ ok: false, reason: expect.stringMatching(/signature/) });
    expect(v.verify({ ...good, respCode: '34' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/signature/),
    });
  });

  it('remembers a checked certificate but still checks its dates on every answer, and checks any other certificate afresh', () => {
    const chain = generateTestChain('Cached');
    const clock = new ManualClock(new Date());
    const v = new ResponseVerifier({ rootPem: chain.rootPem, middlePem: chain.middlePem, testMode: true }, clock);
    const answer = (c: { signCertPem: string; signKey: typeof chain.signKey }) =>
      signFields(
        { respCode: '00', orderId: 'X', signPubKeyCert: c.signCertPem },
        { privateKey: c.signKey, certId: '1' },
      );
    expect(v.verify(answer(chain))).toEqual({ ok: true });
    expect(v.verify(answer(chain))).toEqual({ ok: true });
    // Same root and intermediate names, same serials, other keys: not the certificate that was checked.
    expect(v.verify(answer(generateTestChain('Cached')))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/chain/),
    });
    expect(v.verify({ ...answer(chain), orderId: 'Y' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/signature/),
    });
    clock.set(new Date(Date.now() + 40 * 365 * 86400_000));
    expect(v.verify(answer(chain))).toMatchObject({ ok: false, reason: expect.stringMatching(/outside its validity/) });
  });

  it('refuses a certificate from another root', () => {
    const other = generateTestChain('Other');
    const v = new ResponseVerifier(anchors, new ManualClock(new Date('2019-06-01T00:00:00Z'))).checkCertificate(
      other.signCertPem,
    );
    expect(v.ok).toBe(false);
  });
});

describe('HttpAcquirer against the simulator over HTTP', () => {
  const bank = new MemorySimBank();
  const key = generateMerchantKey();
  let sim: AcquirerSimulator;
  let client: HttpAcquirer;
  const ref = (orderId: string) => ({ orderId, txnTime: '20261125103000' });
  const clientWaiting = (timeoutMs: number) =>
    new HttpAcquirer({
      baseUrl: sim.url,
      merId: '777290058110048',
      key,
      timeoutMs,
      verifier: new ResponseVerifier({ rootPem: sim.chain.rootPem, middlePem: sim.chain.middlePem, testMode: true }),
    });

  beforeAll(async () => {
    sim = new AcquirerSimulator({ bank, merchantCertPem: key.certPem });
    await sim.start();
    // Generous: a loaded machine (RSA sign + verify per call) once took longer than 400 ms and a 34 read as no_answer.
    client = clientWaiting(10_000);
    await bank.record({
      orderId: 'OK1',
      amountFen: 1234,
      status: 'approved',
      txnTime: '20261125103000',
      respCode: '00',
    });
    await bank.record({
      orderId: 'NO1',
      amountFen: 1234,
      status: 'declined',
      txnTime: '20261125103000',
      respCode: '51',
    });
  });
  afterAll(() => sim.close());
  afterEach(() => sim.clearFaults());

  it('approved: origRespCode 00 with queryId, trace and settle date', async () => {
    const r = await client.query(ref('OK1'));
    expect(r).toMatchObject({ kind: 'approved', origRespCode: '00', txnAmtFen: 1234 });
    if (r.kind === 'approved') expect(r.settleDate).toBe('1125');
  });

  it('declined at the issuer: a confirmed failure', async () => {
    expect(await client.query(ref('NO1'))).toMatchObject({ kind: 'failed', origRespCode: '51' });
  });

  it('unknown to the gateway: 34, not found (never a failure)', async () => {
    expect(await client.query(ref('NONE'))).toMatchObject({ kind: 'not_found', respCode: '34' });
  });

  it.each([['03'], ['04'], ['05']])('%s: processing, ask again', async (code) => {
    sim.setFault('OK1', code as '03', 1);
    expect(await client.query(ref('OK1'))).toMatchObject({ kind: 'processing', respCode: code });
    expect((await client.query(ref('OK1'))).kind).toBe('approved');
  });

  it('37: rate limited', async () => {
    sim.setFault('OK1', '37', 1);
    expect((await client.query(ref('OK1'))).kind).toBe('rate_limited');
  });

  it.each([
    ['500', /HTTP 500/],
    ['timeout', /timed out/],
    ['badsig', /does not verify/],
    ['foreign', /chain/],
  ])('%s: no answer, says nothing', async (fault, reason) => {
    sim.setFault('OK1', fault as '500', 1);
    // Only the fault that never answers needs a short wait; the others answer and must not time out.
    const r = await (fault === 'timeout' ? clientWaiting(300) : client).query(ref('OK1'));
    expect(r.kind).toBe('no_answer');
    if (r.kind === 'no_answer') expect(r.reason).toMatch(reason);
  });

  it('an answer signed by an expired certificate is ignored', async () => {
    const expired = new AcquirerSimulator({
      bank,
      chain: generateTestChain('Old', { notBefore: new Date('2020-01-01'), notAfter: new Date('2021-01-01') }),
    });
    await expired.start();
    const c = new HttpAcquirer({
      baseUrl: expired.url,
      merId: '777290058110048',
      key,
      verifier: new ResponseVerifier({
        rootPem: expired.chain.rootPem,
        middlePem: expired.chain.middlePem,
        testMode: true,
      }),
    });
    const r = await c.query(ref('OK1'));
    await expired.close();
    expect(r).toMatchObject({ kind: 'no_answer', reason: expect.stringMatching(/validity/) });
  });

  it('a request signed with the wrong key is refused by the gateway', async () => {
    const wrong = new HttpAcquirer({
      baseUrl: sim.url,
      merId: '777290058110048',
      key: generateMerchantKey(),
      verifier: new ResponseVerifier({ rootPem: sim.chain.rootPem, middlePem: sim.chain.middlePem, testMode: true }),
    });
    expect(await wrong.query(ref('OK1'))).toMatchObject({ kind: 'no_answer', respCode: '11' });
  });

  it('reversal: 00 reverses at the bank; the original then queries as failed', async () => {
    await bank.record({
      orderId: 'REV1',
      amountFen: 500,
      status: 'approved',
      txnTime: '20261125103000',
      respCode: '00',
    });
    expect(await client.reverse({ ...ref('REV1'), amountFen: 500 })).toEqual({ kind: 'reversed', respCode: '00' });
    expect((await bank.get('REV1'))?.status).toBe('reversed');
    expect((await client.query(ref('REV1'))).kind).toBe('failed');
  });
});
