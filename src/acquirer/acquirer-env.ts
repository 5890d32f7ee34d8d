/**
 * The acquirer the service talks to, from the environment (../shared/spec/service-contract.md):
 * ACQUIRER_URL, ACQUIRER_MER_ID, the merchant key (ACQUIRER_SIGN_PFX + ACQUIRER_SIGN_PFX_PASSWORD,
 * or ACQUIRER_SIGN_KEY_PEM + ACQUIRER_SIGN_CERT_ID), the trust chain (ACQUIRER_ROOT_CERT,
 * ACQUIRER_MIDDLE_CERT: file paths or PEM text), ACQUIRER_TEST_MODE, ACQUIRER_TIMEOUT_MS.
 * Without ACQUIRER_URL the embedded default starts the simulator in-process and trusts it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Clock, systemClock } from '../shared/clock';
import { Logger } from '../shared/logger';
import { HttpAcquirer } from './acp-client';
import { keyFromPem, loadPfx } from './acp-keys';
import { SigningKey } from './acp-signing';
import { ResponseVerifier } from './acp-verify';
import { AcquirerSimulator } from './acp-simulator';
import { SimBankPort } from './sim-bank';
import { generateMerchantKey } from './test-chain';

const pemOrFile = (name: string, v: string | undefined): string => {
  if (!v) throw new Error(`${name} is required when ACQUIRER_URL is set`);
  if (v.includes('-----BEGIN')) return v;
  if (!existsSync(v)) throw new Error(`${name}: no such file ${v}`);
  return readFileSync(v, 'utf8');
};

export function acquirerFromEnv(env: NodeJS.ProcessEnv, clock: Clock = systemClock, log?: Logger): HttpAcquirer {
  const baseUrl = env.ACQUIRER_URL;
  if (!baseUrl || !/^https?:\/\//.test(baseUrl))
    throw new Error(`ACQUIRER_URL must be an http(s) URL, got "${baseUrl ?? ''}"`);
  const merId = env.ACQUIRER_MER_ID ?? '';
  if (!/^[0-9A-Za-z]{15}$/.test(merId)) throw new Error('ACQUIRER_MER_ID must be the 15-character merchant id');
  let key: SigningKey;
  if (env.ACQUIRER_SIGN_PFX) {
    if (!existsSync(env.ACQUIRER_SIGN_PFX)) throw new Error(`ACQUIRER_SIGN_PFX: no such file ${env.ACQUIRER_SIGN_PFX}`);
    key = loadPfx(readFileSync(env.ACQUIRER_SIGN_PFX), env.ACQUIRER_SIGN_PFX_PASSWORD ?? '');
  } else if (env.ACQUIRER_SIGN_KEY_PEM) {
    key = keyFromPem(pemOrFile('ACQUIRER_SIGN_KEY_PEM', env.ACQUIRER_SIGN_KEY_PEM), env.ACQUIRER_SIGN_CERT_ID ?? '');
  } else {
    throw new Error(
      'the merchant signing key is missing: set ACQUIRER_SIGN_PFX (+ _PASSWORD) or ACQUIRER_SIGN_KEY_PEM + ACQUIRER_SIGN_CERT_ID',
    );
  }
  const verifier = new ResponseVerifier(
    {
      rootPem: pemOrFile('ACQUIRER_ROOT_CERT', env.ACQUIRER_ROOT_CERT),
      middlePem: pemOrFile('ACQUIRER_MIDDLE_CERT', env.ACQUIRER_MIDDLE_CERT),
      testMode: env.ACQUIRER_TEST_MODE === 'true' || env.ACQUIRER_TEST_MODE === '1',
    },
    clock,
  );
  const timeoutMs = env.ACQUIRER_TIMEOUT_MS ? Number(env.ACQUIRER_TIMEOUT_MS) : 30_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
    throw new Error('ACQUIRER_TIMEOUT_MS must be a whole number of at least 100');
  return new HttpAcquirer({ baseUrl, merId, key, verifier, timeoutMs, log });
}

export interface EmbeddedAcquirer {
  acquirer: HttpAcquirer;
  simulator: AcquirerSimulator;
  url: string;
  close(): Promise<void>;
}

/** The simulator on loopback and a client that trusts it: real HTTP, real signatures, test chain. */
export async function embeddedAcquirer(
  bank: SimBankPort,
  opts: { clock?: Clock; log?: Logger; timeoutMs?: number } = {},
): Promise<EmbeddedAcquirer> {
  const merchant = generateMerchantKey();
  const simulator = new AcquirerSimulator({ bank, merchantCertPem: merchant.certPem });
  const url = await simulator.start('127.0.0.1', 0);
  const acquirer = new HttpAcquirer({
    baseUrl: url,
    merId: '777290058110048',
    key: merchant,
    verifier: new ResponseVerifier(
      { rootPem: simulator.chain.rootPem, middlePem: simulator.chain.middlePem, testMode: true },
      opts.clock ?? systemClock,
    ),
    timeoutMs: opts.timeoutMs ?? 5000,
    log: opts.log,
  });
  return {
    acquirer,
    simulator,
    url,
    close: async () => {
      await acquirer.close();
      await simulator.close();
    },
  };
}
