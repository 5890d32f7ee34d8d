/**
 * A UnionPay MIS-POS terminal, simulated: the device end of the serial line, speaking the spec
 * (S0 V0 R0 Q0 L0 T0 H0), with a journal for Q0, sign-in state, and the automatic reversal of a
 * `98` sale before its next online transaction. What the bank "did" is reported to a SimBankPort
 * so the acquirer simulator answers for the same reference.
 *
 * Scriptable per request: a queue of rules (each used by one S0/V0/R0), or rules keyed by amount.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { SimBankPort } from '../acquirer/sim-bank';
import { chinaTimestamp } from '../shared/clock';
import { EcrMessage } from './ecr-codec';
import { EcrLink, LinkIo } from './ecr-link';

export type SimAction =
  | 'approve' // RC 00
  | 'decline' // RC `rc` (default 51)
  | 'C1' // cancelled at the terminal; nothing reached the bank
  | '98' // no bank answer: pending reversal, sent before the next online transaction or on L0
  | 'BZ'
  | 'NS'
  | 'FE'
  | 'unlisted' // an RC the spec does not list (`rc`, default 'X9')
  | 'silence' // no final response at all
  | 'close'; // close the port mid-transaction (after the ACK and any prompts)

export interface SimRule {
  action: SimAction;
  rc?: string;
  /** P1 prompts sent before the final response. */
  prompts?: string[];
  /** Wait before the final response (after the prompts). */
  delayMs?: number;
  /** In-process only: the final response waits for this too (a test releases the terminal when it chooses). */
  hold?: Promise<unknown>;
  /** For `silence` and `close`: what the bank did with it (default: approved — the worst case for the store). */
  bank?: 'approved' | 'declined' | 'none';
  nakFirst?: boolean; // NAK the request frame the first time
  dropAck?: boolean; // do not ACK the request frame the first time (the ECR resends; handled once)
  noise?: boolean; // line noise before each frame the terminal sends
  corruptLrc?: boolean; // the first response frame goes out with a bad LRC
}

export interface SimScript {
  /** Used in order, one per S0/V0/R0. */
  next?: SimRule[];
  /** By amount in fen, when the queue is empty. */
  byAmount?: Record<string, SimRule>;
  /** When nothing else matches (default approve). */
  otherwise?: SimRule;
  /** Start not signed in (S0 answered NS until an L0). */
  signedOut?: boolean;
}

export interface JournalEntry {
  rf: string;
  mt: string;
  status: 'A' | 'D' | 'R' | 'P' | 'V';
  amountFen: number;
  traceNo: string;
  rrn: string;
  date: string;
  time: string;
  rc: string;
}

export interface SimulatorOptions {
  bank?: SimBankPort;
  script?: SimScript;
  terminalId?: string;
  merchantId?: string;
  now?: () => Date;
  /** Called when a rule says `close`: the owner closes the port (and may reopen it). */
  onClose?: () => void;
}

export class TerminalSimulator extends EventEmitter {
  readonly link: EcrLink;
  readonly journal = new Map<string, JournalEntry>();
  private signedIn: boolean;
  private script: Required<Pick<SimScript, 'next' | 'byAmount'>> & SimScript;
  private trace = randomInt(1, 500_000);
  private batch = 1;
  private pendingReversals: string[] = [];
  private working: Promise<void> = Promise.resolve();
  private busy = false;
  private requests = 0;
  readonly terminalId: string;
  readonly merchantId: string;

  constructor(
    io: LinkIo,
    private readonly opts: SimulatorOptions = {},
  ) {
    super();
    this.link = new EcrLink(io);
    this.script = { next: [], byAmount: {}, ...opts.script };
    this.signedIn = !opts.script?.signedOut;
    this.terminalId = opts.terminalId ?? '12345678';
    this.merchantId = opts.merchantId ?? '898310048161234';
    this.link.on('message', (m: EcrMessage) => {
      // One request at a time, as a real terminal does: a request during another is answered BZ.
      if (this.busy) {
        void this.link.send({
          MT: `${m.MT[0]}1`,
          SQ: m.SQ ?? '000000',
          RC: 'BZ',
          RM: '终端忙',
          ...(m.RF !== undefined ? { RF: m.RF } : {}),
        });
        return;
      }
      this.busy = true;
      const id = ++this.requests;
      // A request that never got a final response (silence, close) frees the terminal when it is done with it.
      this.working = this.handle(m)
        .catch((err) => {
          this.emit('fault', err);
        })
        .finally(() => {
          if (this.requests === id) this.busy = false;
        });
    });
  }

  feed(chunk: Buffer): void {
    this.link.feed(chunk);
  }

  /** Replaces the script (the control API's POST /script). */
  setScript(script: SimScript): void {
    this.script = { next: [], byAmount: {}, ...script };
    if (script.signedOut !== undefined) this.signedIn = !script.signedOut;
  }

  /** Appends rules to the queue. */
  push(...rules: SimRule[]): void {
    this.script.next.push(...rules);
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  private ruleFor(amountFen: number): SimRule {
    return (
      this.script.next.shift() ??
      this.script.byAmount[String(amountFen)] ??
      this.script.otherwise ?? { action: 'approve' }
    );
  }

  /** A final response ends the request: from then on the terminal takes the next one, even before our ACK arrives. */
  private async reply(msg: EcrMessage): Promise<void> {
    if (msg.MT !== 'P1') this.busy = false;
    await this.link.send(msg);
  }

  private async handle(m: EcrMessage): Promise<void> {
    const sq = m.SQ ?? '000000';
    this.emit('request', m);
    switch (m.MT) {
      case 'S0':
      case 'V0':
      case 'R0':
        return this.financial(m, sq);
      case 'Q0':
        return this.reply(this.queryAnswer(sq, m.RF ?? ''));
      case 'L0':
        await this.flushReversals();
        this.signedIn = true;
        return this.reply({ MT: 'L1', SQ: sq, RC: '00', RM: '签到成功', TI: this.terminalId, MI: this.merchantId });
      case 'T0': {
        const approved = [...this.journal.values()].filter((j) => j.status === 'A');
        const total = approved.reduce((s, j) => s + (j.mt === 'R0' ? -j.amountFen : j.amountFen), 0);
        this.batch++;
        return this.reply({
          MT: 'T1',
          SQ: sq,
          RC: '00',
          NC: String(approved.length),
          NA: Math.max(total, 0).toString().padStart(12, '0'),
        });
      }
      case 'H0':
        return this.reply({ MT: 'H1', SQ: sq, RC: '00' });
      default:
        return this.reply({ MT: `${m.MT[0]}1`, SQ: sq, RC: 'FE', RM: '报文格式错' });
    }
  }

  private queryAnswer(sq: string, rf: string): EcrMessage {
    const j = this.journal.get(rf);
    if (!j) return { MT: 'Q1', SQ: sq, RC: '00', RF: rf, ST: 'N' };
    const base: EcrMessage = { MT: 'Q1', SQ: sq, RC: '00', RF: rf, ST: j.status };
    if (j.status === 'A' || j.status === 'R' || j.status === 'V') {
      Object.assign(base, {
        AM: j.amountFen.toString().padStart(12, '0'),
        TN: j.traceNo,
        RR: j.rrn,
        DT: j.date,
        TM: j.time,
      });
    }
    return base;
  }

  /** The terminal's own reversal of `98` sales, sent before its next online transaction. */
  private async flushReversals(): Promise<void> {
    for (const rf of this.pendingReversals.splice(0)) {
      const j = this.journal.get(rf);
      if (!j) continue;
      if (this.opts.bank) await this.opts.bank.reverse(rf);
      j.status = 'R';
      this.emit('reversed', rf);
    }
  }

  private async financial(m: EcrMessage, sq: string): Promise<void> {
    const mt = m.MT;
    const resp = `${mt[0]}1`;
    const rf = m.RF ?? '';
    const amountFen = Number(m.AM ?? '0');
    // Every final response echoes the request's RF (and AM) so the ECR can tell it is the answer to this request.
    const echo: EcrMessage = {
      ...(m.RF !== undefined ? { RF: m.RF } : {}),
      ...(m.AM !== undefined ? { AM: m.AM } : {}),
    };
    if (!rf || !/^\d{12}$/.test(m.AM ?? ''))
      return this.reply({ MT: resp, SQ: sq, RC: 'FE', RM: '报文格式错', ...echo });
    if (!this.signedIn) return this.reply({ MT: resp, SQ: sq, RC: 'NS', RM: '请先签到', ...echo });
    const rule = this.ruleFor(amountFen);
    // Faults that act on the request frame itself were armed before it arrived (armFaults); the rest act now.
    if (rule.noise) this.link.faults.noiseBeforeFrames += 1 + (rule.prompts?.length ?? 0);
    if (rule.corruptLrc) this.link.faults.corruptLrc += 1;
    if (rule.action === 'BZ' || rule.action === 'NS' || rule.action === 'FE') {
      return this.reply({
        MT: resp,
        SQ: sq,
        RC: rule.action,
        RM: rule.action === 'BZ' ? '终端忙' : rule.action === 'NS' ? '请先签到' : '报文格式错',
        ...echo,
      });
    }
    await this.flushReversals();
    // A void names its sale by trace number; one this terminal has no record of cannot be voided, and
    // saying "approved" would tell the till a refund happened that never did. 25: original not found.
    const original =
      mt === 'V0'
        ? [...this.journal.values()].find((j) => j.traceNo === m.TN && j.mt === 'S0' && j.status === 'A')
        : undefined;
    if (mt === 'V0' && !original) return this.reply({ MT: resp, SQ: sq, RC: '25', RM: '原交易不存在', ...echo });
    for (const text of rule.prompts ?? []) await this.reply({ MT: 'P1', SQ: sq, RM: text });
    if (rule.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs));
    if (rule.hold) await rule.hold;

    const now = this.now();
    const stamp = chinaTimestamp(now);
    this.trace = this.trace >= 999_999 ? 1 : this.trace + 1;
    const entry: JournalEntry = {
      rf,
      mt,
      status: 'A',
      amountFen,
      traceNo: this.trace.toString().padStart(6, '0'),
      rrn: `${stamp.slice(2, 8)}${this.trace.toString().padStart(6, '0')}`,
      date: stamp.slice(0, 8),
      time: stamp.slice(8, 14),
      rc: '00',
    };
    const record = async (status: 'approved' | 'declined', respCode: string) => {
      if (this.opts.bank && mt === 'S0') {
        await this.opts.bank.record({
          orderId: rf,
          amountFen,
          status,
          txnTime: stamp,
          respCode,
          traceNo: entry.traceNo,
        });
      }
      if (mt === 'V0' && status === 'approved' && original) {
        original.status = 'V';
        if (this.opts.bank) await this.opts.bank.reverse(original.rf);
      }
    };

    switch (rule.action) {
      case 'approve':
        this.journal.set(rf, entry);
        await record('approved', '00');
        return this.reply({
          MT: resp,
          SQ: sq,
          RC: '00',
          RM: '交易成功',
          AM: m.AM!,
          RF: rf,
          CN: '622848******1234',
          CT: 'D',
          TI: this.terminalId,
          MI: this.merchantId,
          BN: this.batch.toString().padStart(6, '0'),
          TN: entry.traceNo,
          RR: entry.rrn,
          AC: randomInt(0, 999_999).toString().padStart(6, '0'),
          DT: entry.date,
          TM: entry.time,
        });
      case 'decline': {
        const rc = rule.rc ?? '51';
        this.journal.set(rf, { ...entry, status: 'D', rc });
        await record('declined', rc);
        return this.reply({ MT: resp, SQ: sq, RC: rc, RM: '交易失败', ...echo });
      }
      case 'C1':
        this.journal.set(rf, { ...entry, status: 'D', rc: 'C1' });
        return this.reply({ MT: resp, SQ: sq, RC: 'C1', RM: '交易取消', ...echo });
      case '98':
        // The bank may have charged the card; the terminal will reverse it before its next online transaction.
        this.journal.set(rf, { ...entry, status: 'P', rc: '98' });
        await record('approved', '00');
        this.pendingReversals.push(rf);
        return this.reply({ MT: resp, SQ: sq, RC: '98', RM: '交易超时', ...echo });
      case 'unlisted': {
        const rc = rule.rc ?? 'X9';
        this.journal.set(rf, { ...entry, rc });
        await record('approved', '00');
        return this.reply({ MT: resp, SQ: sq, RC: rc, RM: '未知', ...echo });
      }
      case 'silence':
      case 'close': {
        const bank = rule.bank ?? 'approved';
        if (bank !== 'none') {
          this.journal.set(rf, {
            ...entry,
            status: bank === 'approved' ? 'A' : 'D',
            rc: bank === 'approved' ? '00' : '51',
          });
          await record(bank, bank === 'approved' ? '00' : '51');
        }
        if (rule.action === 'close') this.opts.onClose?.();
        return;
      }
    }
  }

  /**
   * Faults on the next request frame must be armed before it arrives: the link NAKs or drops the
   * ACK as it receives. The control API and tests call this together with push().
   */
  armRequestFaults(rule: Pick<SimRule, 'nakFirst' | 'dropAck'>): void {
    if (rule.nakFirst) this.link.faults.nakFrames++;
    if (rule.dropAck) this.link.faults.dropAcks++;
  }

  /** Pushes a rule and arms its request-frame faults in one go. */
  expect(rule: SimRule): void {
    this.armRequestFaults(rule);
    this.push(rule);
  }
}
