/**
 * The ECR side of a lane's card terminal on a serial line: one request at a time, each S0/V0/R0
 * classified by the spec's RC table into approved / declined / not executed / unknown.
 * Built on @serialport/stream with an injected binding (the OS binding for devices, a mock or a
 * null-modem pair elsewhere); reopens the port when it goes away.
 */
import { SerialPortStream } from '@serialport/stream';
import type { BindingInterface } from '@serialport/bindings-interface';
import { Logger, silentLogger } from '../shared/logger';
import { EcrMessage, amountField } from './ecr-codec';
import { EcrLink } from './ecr-link';
import {
  ApprovedSale,
  QueryOutcome,
  QueryStatus,
  RefundRequest,
  SaleHooks,
  SaleOutcome,
  SaleRequest,
  SimpleOutcome,
  Terminal,
  TerminalBusyError,
  VoidRequest,
} from './terminal';

export interface SerialTerminalOptions {
  path: string;
  baudRate?: number;
  binding: BindingInterface;
  /** T_RESP: wait for the final response after the ACK or the last prompt. */
  tRespMs: number;
  tAckMs?: number;
  tByteMs?: number;
  /** How long to wait before reopening a port that went away. */
  reconnectMs?: number;
  /** Wait for a Q0/L0/H0 answer (they involve no card holder). */
  tQueryMs?: number;
  log?: Logger;
}

const DECLINE_RCS = new Set(['05', '14', '51', '54', '55', '61', '65', '75', 'C1']);
const NOT_EXECUTED_RCS = new Set(['BZ', 'FE', 'NS']);

type Exchange =
  | { kind: 'response'; msg: EcrMessage }
  | { kind: 'not_sent'; naks: number; sends: number }
  | { kind: 'no_response' }
  /** The line went away (port closed, cable pulled, driver shut down) before the final response. */
  | { kind: 'line_down'; acked: boolean; written: boolean };

interface Current {
  sq: string;
  expect: string;
  /** The request: its RF and AM must come back in the answer (spec §3), or the answer is someone else's. */
  request: EcrMessage;
  acked: boolean;
  /** A byte of the request went on the line: from then on the terminal may have acted on it. */
  written: boolean;
  hooks: SaleHooks;
  timeoutMs: number;
  timer: NodeJS.Timeout | null;
  done(e: Exchange): void;
}

export class SerialTerminal implements Terminal {
  private port: SerialPortStream | null = null;
  private link: EcrLink | null = null;
  private connected = false;
  private closing = false;
  private busy: 'payment' | 'admin' | null = null;
  private idle: Promise<void> = Promise.resolve();
  private sq = 0;
  private current: Current | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(
    readonly lane: string,
    private readonly opts: SerialTerminalOptions,
  ) {
    this.log = opts.log ?? silentLogger;
  }

  /** Opens the port; when it cannot, keeps trying in the background and reports not connected. */
  async start(): Promise<this> {
    await this.open().catch((err) => {
      this.log.warn('terminal port could not be opened; retrying', {
        lane: this.lane,
        path: this.opts.path,
        err: String(err),
      });
      this.scheduleReconnect();
    });
    return this;
  }

  isIdle(): boolean {
    return !this.busy;
  }
  isConnected(): boolean {
    return this.connected;
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const port = new SerialPortStream({
        binding: this.opts.binding,
        path: this.opts.path,
        baudRate: this.opts.baudRate ?? 9600,
        autoOpen: false,
      });
      const link = new EcrLink(
        {
          write: (b) => {
            port.write(b);
          },
        },
        { tAckMs: this.opts.tAckMs, tByteMs: this.opts.tByteMs },
      );
      link.on('message', (m: EcrMessage) => this.onMessage(m));
      link.on('bad', (reason: string) => this.log.warn('bad frame from terminal', { lane: this.lane, reason }));
      port.on('data', (d: Buffer) => link.feed(d));
      port.on('error', (err) => this.log.warn('terminal port error', { lane: this.lane, err: String(err) }));
      port.on('close', () => this.onPortClosed(port));
      port.open((err) => {
        if (err) return reject(err);
        this.port = port;
        this.link = link;
        this.connected = true;
        this.log.info('terminal connected', { lane: this.lane, path: this.opts.path });
        resolve();
      });
    });
  }

  private onPortClosed(port: SerialPortStream): void {
    if (port !== this.port) return;
    this.connected = false;
    this.link?.lineDown();
    this.port = null;
    this.lineLost();
    if (!this.closing) {
      this.log.warn('terminal line went away; reconnecting', { lane: this.lane });
      this.scheduleReconnect();
    }
  }

  /** Ends the request in flight, if any, with what is known of it: whether it was written and ACKed. */
  private lineLost(): void {
    const c = this.current;
    if (c) c.done({ kind: 'line_down', acked: c.acked, written: c.written });
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open().catch(() => this.scheduleReconnect());
    }, this.opts.reconnectMs ?? 1000);
  }

  private nextSq(): string {
    this.sq = this.sq >= 999_999 ? 1 : this.sq + 1;
    return this.sq.toString().padStart(6, '0');
  }

  /** For tests of the wrap: the SQ the next request will carry is after `n`. */
  setSequence(n: number): void {
    this.sq = n;
  }

  private onMessage(m: EcrMessage): void {
    const c = this.current;
    if (!c || m.SQ !== c.sq) {
      this.log.warn('terminal message for no request in flight', { lane: this.lane, mt: m.MT, sq: m.SQ });
      return;
    }
    if (m.MT === 'P1') {
      void Promise.resolve(c.hooks.onPrompt?.(m.RM ?? '')).catch(() => undefined);
      this.armTimer(c);
      return;
    }
    if (m.MT !== c.expect) {
      this.log.warn('terminal message of an unexpected type; ignored', {
        lane: this.lane,
        mt: m.MT,
        sq: m.SQ,
        expected: c.expect,
      });
      return;
    }
    // A stale or misrouted final response (an earlier request's, after an SQ wrap or a restart of our counter)
    // must not settle this one: RF always, and AM whenever the response carries one, must be ours.
    const mismatch = answerMismatch(c.request, m);
    if (mismatch) {
      this.log.warn('terminal answer does not match the request in flight; ignored', {
        lane: this.lane,
        mt: m.MT,
        sq: m.SQ,
        mismatch,
      });
      return;
    }
    c.done({ kind: 'response', msg: m });
  }

  private armTimer(c: Current): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => c.done({ kind: 'no_response' }), c.timeoutMs);
  }

  /**
   * One request and its final response, one at a time on the line. A payment request waits for a
   * status query or sign-in in flight (the sweeper's; they are short) but is refused while another
   * payment is at the terminal; a query is refused whenever the line is in use.
   */
  private async exchange(fields: EcrMessage, timeoutMs: number, hooks: SaleHooks = {}): Promise<Exchange> {
    const kind = ['S0', 'V0', 'R0'].includes(fields.MT) ? 'payment' : 'admin';
    while (this.busy) {
      if (kind === 'admin' || this.busy === 'payment') throw new TerminalBusyError(this.lane);
      await this.idle;
    }
    this.busy = kind;
    let done!: () => void;
    this.idle = new Promise((r) => {
      done = r;
    });
    try {
      const link = this.link;
      if (!link || !this.connected) return { kind: 'not_sent', naks: 0, sends: 0 };
      const sq = this.nextSq();
      const msg: EcrMessage = { MT: fields.MT, SQ: sq, ...fields };
      const expect = `${fields.MT[0]}1`;
      let settle!: (e: Exchange) => void;
      const result = new Promise<Exchange>((r) => {
        settle = r;
      });
      const c: Current = {
        sq,
        expect,
        request: msg,
        acked: false,
        written: false,
        hooks,
        timeoutMs,
        timer: null,
        done: (e) => {
          if (c.timer) clearTimeout(c.timer);
          if (this.current === c) this.current = null;
          settle(e);
        },
      };
      this.current = c;
      const sent = await link.send(msg, () => {
        c.written = true;
      });
      if (!sent.acked) {
        // A final response can beat a lost ACK (then the terminal did take the request); a lost line settled it already.
        if (this.current !== c) return await result;
        c.done(
          sent.sends === 0
            ? { kind: 'line_down', acked: false, written: c.written }
            : { kind: 'not_sent', naks: sent.naks, sends: sent.sends },
        );
        return await result;
      }
      if (this.current === c) {
        c.acked = true;
        await Promise.resolve(hooks.onAcked?.()).catch(() => undefined);
        if (this.current === c) this.armTimer(c);
      }
      return await result;
    } finally {
      this.busy = null;
      done();
    }
  }

  private async financial(fields: EcrMessage, hooks?: SaleHooks, retryAfterSignIn = true): Promise<SaleOutcome> {
    let ex: Exchange;
    try {
      ex = await this.exchange(fields, this.opts.tRespMs, hooks);
    } catch (err) {
      if (err instanceof TerminalBusyError) return { kind: 'not_executed', reason: err.message };
      throw err;
    }
    switch (ex.kind) {
      case 'not_sent':
        if (ex.sends === 0) return { kind: 'not_executed', reason: 'terminal not connected' };
        // Every send NAKed: the terminal dropped the frame each time. Silence might hide a lost ACK.
        return ex.naks === ex.sends
          ? { kind: 'not_executed', reason: `request NAKed on all ${ex.sends} sends` }
          : { kind: 'unknown', reason: 'terminal did not acknowledge the request', acked: false };
      case 'line_down':
        // Once a byte is out, the terminal may have read the whole frame and gone to the bank: only
        // "nothing written" is a confirmed non-execution. Q0 `N` later settles an un-ACKed one as failed.
        if (ex.acked)
          return { kind: 'unknown', reason: 'line broke after the terminal accepted the request', acked: true };
        if (ex.written)
          return { kind: 'unknown', reason: 'line broke after the request was sent, before its ACK', acked: false };
        return { kind: 'not_executed', reason: 'terminal not connected' };
      case 'no_response':
        return { kind: 'unknown', reason: `no final response within ${this.opts.tRespMs} ms`, acked: true };
      case 'response':
        break;
    }
    const m = ex.msg;
    const rc = m.RC ?? '';
    if (rc === '00') return { kind: 'approved', sale: approvedSale(m, fields) };
    if (DECLINE_RCS.has(rc)) return { kind: 'declined', rc, rm: m.RM };
    if (rc === 'NS' && retryAfterSignIn) {
      const signIn = await this.signIn();
      if (signIn.ok) return this.financial(fields, hooks, false);
    }
    if (NOT_EXECUTED_RCS.has(rc)) return { kind: 'not_executed', rc, rm: m.RM, reason: `terminal answered ${rc}` };
    return {
      kind: 'unknown',
      rc,
      rm: m.RM,
      reason:
        rc === '98' ? 'no answer from the bank (98); the terminal will reverse it' : `unlisted response code ${rc}`,
      acked: true,
    };
  }

  sale(req: SaleRequest, hooks?: SaleHooks): Promise<SaleOutcome> {
    return this.financial({ MT: 'S0', AM: amountField(req.amountFen), RF: req.rf }, hooks);
  }

  voidSale(req: VoidRequest, hooks?: SaleHooks): Promise<SaleOutcome> {
    return this.financial({ MT: 'V0', AM: amountField(req.amountFen), TN: req.traceNo, RF: req.rf }, hooks);
  }

  refund(req: RefundRequest, hooks?: SaleHooks): Promise<SaleOutcome> {
    return this.financial(
      { MT: 'R0', AM: amountField(req.amountFen), RR: req.rrn, OD: req.originalDate, RF: req.rf },
      hooks,
    );
  }

  async query(rf: string): Promise<QueryOutcome> {
    const ex = await this.exchange({ MT: 'Q0', RF: rf }, this.opts.tQueryMs ?? 10_000).catch(
      (err) => ({ kind: 'error', err }) as const,
    );
    if (ex.kind !== 'response')
      return { kind: 'failed', reason: ex.kind === 'error' ? String(ex.err) : `query ${ex.kind.replace('_', ' ')}` };
    const m = ex.msg;
    if (m.RC !== '00' || !m.ST || !'ADRPVN'.includes(m.ST) || m.ST.length !== 1)
      return { kind: 'failed', rc: m.RC, reason: `terminal answered ${m.RC}` };
    return {
      kind: 'status',
      status: m.ST as QueryStatus,
      amountFen: m.AM ? Number(m.AM) : undefined,
      traceNo: m.TN,
      rrn: m.RR,
      txnDate: m.DT,
      txnTime: m.TM,
    };
  }

  async signIn(): Promise<SimpleOutcome> {
    const ex = await this.exchange({ MT: 'L0' }, this.opts.tQueryMs ?? 30_000).catch(
      (err) => ({ kind: 'error', err }) as const,
    );
    if (ex.kind !== 'response') return { ok: false, reason: ex.kind === 'error' ? String(ex.err) : ex.kind };
    return { ok: ex.msg.RC === '00', rc: ex.msg.RC, rm: ex.msg.RM };
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const port = this.port;
    this.lineLost();
    this.link?.lineDown();
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
    this.connected = false;
  }
}

/** Why a final response is not the answer to `req`, or null when it is (same RF; same AM when it carries one). */
export function answerMismatch(req: EcrMessage, res: EcrMessage): string | null {
  if (req.RF !== undefined && res.RF !== req.RF) return `RF ${res.RF ?? '(none)'} is not ${req.RF}`;
  if (req.AM !== undefined && res.AM !== undefined && res.AM !== req.AM) return `AM ${res.AM} is not ${req.AM}`;
  return null;
}

function approvedSale(m: EcrMessage, req: EcrMessage): ApprovedSale {
  return {
    rc: '00',
    rm: m.RM,
    amountFen: Number(m.AM ?? req.AM),
    rf: m.RF ?? req.RF,
    cardMasked: maskedCard(m.CN),
    cardType: m.CT,
    terminalId: m.TI,
    merchantId: m.MI,
    batchNo: m.BN,
    traceNo: m.TN,
    rrn: m.RR,
    authCode: m.AC,
    txnDate: m.DT,
    txnTime: m.TM,
  };
}

/** The terminal masks card numbers; this makes sure nothing longer ever gets past us. */
export function maskedCard(cn: string | undefined): string | undefined {
  if (!cn) return undefined;
  const digits = cn.replace(/[^0-9*]/g, '');
  if (digits.length < 10) return '*'.repeat(digits.length);
  return `${digits.slice(0, 6)}${'*'.repeat(Math.max(digits.length - 10, 4))}${digits.slice(-4)}`;
}
