import { AcquirerSimulator } from '../../src/acquirer/acp-simulator';
import { HttpAcquirer } from '../../src/acquirer/acp-client';
import { ResponseVerifier } from '../../src/acquirer/acp-verify';
import { MemorySimBank } from '../../src/acquirer/bank-memory';
import { generateMerchantKey, generateTestChain } from '../../src/acquirer/test-chain';
import { Clock } from '../../src/shared/clock';

/** The acquirer simulator on loopback with its own bank, and a client that trusts it (clock-aware). */
const merchant = generateMerchantKey();

export async function simulatedAcquirer(clock: Clock, timeoutMs = 300, latencyMs = 0) {
  const bank = new MemorySimBank();
  // The chain is valid from a day before the earlier of the test's clock and today: a test whose manual clock
  // stands on a fixed past date must not find the acquirer's certificate "not yet valid" once that date has passed.
  const from = Math.min(clock.now().getTime(), Date.now()) - 86400_000;
  const chain = generateTestChain('POS Sim', { notBefore: new Date(from) });
  const sim = new AcquirerSimulator({ bank, merchantCertPem: merchant.certPem, latencyMs, chain });
  await sim.start();
  const acquirer = new HttpAcquirer({
    baseUrl: sim.url,
    merId: '777290058110048',
    key: merchant,
    timeoutMs,
    verifier: new ResponseVerifier(
      { rootPem: sim.chain.rootPem, middlePem: sim.chain.middlePem, testMode: true },
      clock,
    ),
  });
  return { bank, sim, acquirer };
}
